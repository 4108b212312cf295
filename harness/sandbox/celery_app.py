"""The sandbox's Celery app: Redis broker, the job tasks and the fixes' sweep (scheduled by beat)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "harness.sandbox.settings")

app = Celery("sandbox")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["harness.sandbox.jobs", "fixes.django"])
