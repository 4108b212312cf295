"""Job control (Start, retry, cancel) the way Antenna does it — and, with the fixes on, the cured way."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from fixes.django import start as fixes_start
from harness.sandbox.jobs.models import Job, JobState

BROKER_TRIES = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


def start(job_id: int, retry: bool = False) -> Job:
    """Start or retry: the fixes' begin (Antenna: stage params reset, no lock, no state check; with the
    fixes: locked, refused while running (StartRefused → 409), leftovers deleted), then run_job."""
    from harness.sandbox.jobs.tasks import run_job

    job = fixes_start.begin(job_id, status=JobState.RETRY if retry else JobState.PENDING)
    result = run_job.apply_async(args=[job.pk, job.attempt])
    Job.objects.filter(pk=job.pk).update(task_id=result.id)
    job.task_id = result.id
    return job


def cancel(job_id: int) -> Job:
    """Antenna: CANCELING, revoke the Celery task, then REVOKED (async jobs have nothing else to stop)."""
    from harness.sandbox.celery_app import app

    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.status in JobState.final_states():
            return job
        job.status = JobState.CANCELING
        job.save()
    if job.task_id:  # the broker down: a 503 after a few tries (kombu's default retries a lost connection forever)
        with app.connection_for_write(transport_options=BROKER_TRIES) as connection:
            app.control.revoke(job.task_id, connection=connection)
    return revoke(job_id)


def revoke(job_id: int, reason: str = "Job revoked") -> Job:
    """What Antenna's watchdog does to a job it considers stuck: flip it to REVOKED."""
    job = Job.objects.get(pk=job_id)
    job.status = JobState.REVOKED
    job.finished_at = timezone.now()
    job.progress["summary"]["status"] = JobState.REVOKED
    job.save()
    job.log(reason, level="WARNING")
    return job
