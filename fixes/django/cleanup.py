"""Idempotent cleanup of a job's queue (stream and consumers) and its Redis state, tied to the attempt it
cleans: a deferred cleanup never deletes what a later Start created. Never raises.

The check "still this attempt, and terminal" and the delete (or the record of a deferred retry) run under
the job's row lock, the lock Start/Retry (`start.begin`) takes to bump the attempt: a Start that lands
meanwhile waits for the cleanup, then deletes and creates its own queue."""

from __future__ import annotations

import logging

from django.db import transaction

from fixes.django import runtime
from fixes.django.models import Handout, PendingCleanup, ResultRecord
from fixes.jetstream.errors import QueueUnavailable

log = logging.getLogger(__name__)


def cleanup_job(job_id: int, attempt: int, reason: str) -> bool:
    """Delete the queue and progress state of the job's `attempt`; "not found" is success.

    When NATS or Redis cannot be reached the cleanup is recorded and the sweep retries it.
    """
    try:
        with transaction.atomic():
            return _cleanup_locked(job_id, attempt, reason)
    except Exception:  # the database itself: the caller's transition must never fail because of cleanup
        log.exception("cleanup of job %s attempt %s (%s) failed", job_id, attempt, reason)
        return False


def _cleanup_locked(job_id: int, attempt: int, reason: str) -> bool:
    if not _still_current(job_id, attempt):
        PendingCleanup.objects.filter(job_id=job_id, attempt=attempt).delete()
        return False
    try:
        runtime.bridge().call(lambda q: q.delete(job_id))
        runtime.binding().clear_state(job_id)
    except Exception as exc:  # the caller's transition must never fail because of cleanup
        level = logging.WARNING if isinstance(exc, QueueUnavailable) else logging.ERROR
        log.log(level, "cleanup of job %s attempt %s (%s) deferred: %r", job_id, attempt, reason, exc)
        pending, _ = PendingCleanup.objects.update_or_create(
            job_id=job_id, defaults={"attempt": attempt, "reason": reason[:200], "last_error": repr(exc)})
        PendingCleanup.objects.filter(pk=pending.pk).update(tries=pending.tries + 1)
        return False
    PendingCleanup.objects.filter(job_id=job_id).delete()
    ResultRecord.objects.filter(job_id=job_id).delete()
    # a /tasks/ call still recording a redelivery holds its handout row and then needs the job row we hold (its
    # host's own foreign keys are checked at its commit): skip that row instead of deadlocking. A handout left
    # behind names an attempt that has ended, which no result can use.
    handed = Handout.objects.select_for_update(skip_locked=True).filter(job_id=job_id).values_list("pk", flat=True)
    Handout.objects.filter(pk__in=list(handed)).delete()
    log.info("cleaned up queue of job %s attempt %s (%s)", job_id, attempt, reason)
    return True


def retry_pending() -> int:
    """Retry deferred cleanups; returns how many succeeded."""
    return sum(cleanup_job(p.job_id, p.attempt, p.reason) for p in PendingCleanup.objects.all()[:500])


def _still_current(job_id: int, attempt: int) -> bool:
    """The job is terminal in this very attempt (a newer attempt owns the queue names now), or gone.
    Locks the job's row until the caller's transaction ends."""
    binding = runtime.binding()
    job = binding.model.objects.select_for_update().filter(pk=job_id).first()
    return job is None or (binding.attempt(job) == attempt and job.status in binding.terminal_states)
