from django.core.management.base import BaseCommand

from harness.sandbox.jobs import actions
from harness.sandbox.jobs.models import Job


class Command(BaseCommand):
    help = "Do what Antenna's job watchdog does to a stuck job: revoke its Celery task and mark it REVOKED."

    def add_arguments(self, parser):
        parser.add_argument("job_id", type=int)

    def handle(self, *args, job_id, **options):
        from harness.sandbox.celery_app import app

        job = Job.objects.get(pk=job_id)
        if job.task_id:
            app.control.revoke(job.task_id)
        actions.revoke(job_id, reason="Job revoked by the watchdog: no progress")
        self.stdout.write(f"job {job_id} REVOKED")
