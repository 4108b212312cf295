from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = ("Create (or reuse) a user and print its API token key, alone on stdout. The harness's worker is a "
            "superuser, like the token the harness uses on Antenna; --member-only makes a user that may touch "
            "only the jobs of projects it is a member of (none yet).")

    def add_arguments(self, parser):
        parser.add_argument("--username", default="worker")
        parser.add_argument("--member-only", action="store_true")

    def handle(self, *args, username, member_only, **options):
        user, _ = get_user_model().objects.get_or_create(username=username)
        if user.is_superuser == member_only:
            user.is_superuser = not member_only
            user.save(update_fields=["is_superuser"])
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(token.key)
