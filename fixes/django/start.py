"""Idempotent Start/retry: one attempt at a time, leftovers deleted first, each image published once."""

from __future__ import annotations

from django.db import transaction

from fixes.django import runtime


class StartRefused(Exception):
    """The job is already running; the caller answers 409 with the job's state."""

    def __init__(self, job):
        self.job = job
        super().__init__(f"job {job.pk} is {job.status}; cancel it or wait for it to finish before starting again")


def begin_attempt(job_id: int, status: str | None = None):
    """Lock the job, refuse if busy, delete the previous attempt's queue and state, reset progress.

    Raises StartRefused, or QueueUnavailable when NATS cannot confirm the leftovers are gone
    (then nothing was changed and the caller may retry).
    """
    binding = runtime.binding()
    with transaction.atomic():
        job = binding.model.objects.select_for_update().get(pk=job_id)
        if job.status in binding.busy_states:
            raise StartRefused(job)
        runtime.bridge().call(lambda q: q.delete(job_id))
        binding.clear_state(job_id)
        binding.reset_for_attempt(job)
        if status:
            job.status = status
        job.save()
    from fixes.django.models import Observation, PendingCleanup

    Observation.objects.filter(job_id=job_id).delete()
    PendingCleanup.objects.filter(job_id=job_id).delete()
    return job


def publish_attempt(job_id: int, attempt: int, tasks: list[tuple[str, bytes]]) -> tuple[float, int]:
    """Create the attempt's stream and publish every task once (Nats-Msg-Id dedupe).

    Never publishes on top of a live stream: if the stream already holds this attempt's
    messages (a re-run of the same Celery task), nothing is published again.
    If the job ended while this attempt was being published, the queue is deleted again: the job's
    cleanup may have run before the stream existed, and nothing else would ever delete it.
    Returns (stream creation time, messages stored by this call).
    """
    capture_advisories = runtime.config().advisories

    async def run(q):
        if capture_advisories:  # before any task can die: advisories are lost if nobody stores them
            await q.ensure_advisory_stream()
        created = await q.create(job_id)
        snapshot = await q.snapshot(job_id)
        if snapshot.last_seq >= len(tasks) > 0:
            return created, 0
        return created, await q.publish(job_id, tasks)

    created, stored = runtime.bridge().call(run, timeout=max(30.0, len(tasks) / 1000))
    if _ended(job_id, attempt):
        from fixes.django.cleanup import cleanup_job

        cleanup_job(job_id, reason=f"attempt {attempt} published after the job ended")
    return created, stored


def _ended(job_id: int, attempt: int) -> bool:
    """The job is final in this very attempt (a newer attempt owns the queue names: leave them alone)."""
    binding = runtime.binding()
    job = binding.model.objects.filter(pk=job_id).first()
    return job is not None and job.attempt == attempt and job.status in binding.terminal_states
