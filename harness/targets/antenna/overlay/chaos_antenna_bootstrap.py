"""Run with Antenna's python and the target's environment: migrate, seed, print the seed as JSON (last line).

`python -m chaos_antenna_bootstrap`; CHAOS_SEED names the pipeline and algorithms to register.
"""

import json
import sys

import django


def main() -> None:
    django.setup()
    from ami.tests.fixtures.signals import initialize_demo_project
    from chaos_antenna_app.seed import seed, seed_spec
    from django.apps import apps
    from django.core.management import call_command
    from django.db.models.signals import post_migrate

    # ami.main's ready() hooks a demo-project builder to post_migrate; it needs S3/MinIO and raises without it,
    # which also skips the post_migrate handlers after it (roles, permissions). No setting turns it off.
    if not post_migrate.disconnect(initialize_demo_project, sender=apps.get_app_config("main")):
        print("chaos_antenna_bootstrap: initialize_demo_project was not connected (changed in this checkout?)",
              file=sys.stderr)
    call_command("migrate", interactive=False, verbosity=0)
    print(json.dumps(seed(seed_spec())))


if __name__ == "__main__":
    main()
