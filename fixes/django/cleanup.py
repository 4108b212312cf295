"""Idempotent cleanup of a job's queue (stream + consumer) and its Redis state. Never raises."""

from __future__ import annotations

import logging

from fixes.django import runtime
from fixes.django.models import PendingCleanup
from fixes.queue import QueueUnavailable

log = logging.getLogger(__name__)


def cleanup_job(job_id: int, reason: str) -> bool:
    """Delete the queue and progress state of a job. "Not found" is success.

    When NATS or Redis cannot be reached the cleanup is recorded and the sweep retries it.
    """
    try:
        runtime.bridge().call(lambda q: q.delete(job_id))
        runtime.binding().clear_state(job_id)
    except Exception as exc:  # the caller's transition must never fail because of cleanup
        level = logging.WARNING if isinstance(exc, QueueUnavailable) else logging.ERROR
        log.log(level, "cleanup of job %s (%s) deferred: %r", job_id, reason, exc)
        try:
            pending, _ = PendingCleanup.objects.get_or_create(job_id=job_id, defaults={"reason": reason})
            PendingCleanup.objects.filter(pk=pending.pk).update(tries=pending.tries + 1, last_error=repr(exc))
        except Exception:
            log.exception("could not record pending cleanup of job %s", job_id)
        return False
    PendingCleanup.objects.filter(job_id=job_id).delete()
    log.info("cleaned up queue of job %s (%s)", job_id, reason)
    return True


def retry_pending() -> int:
    """Retry deferred cleanups; returns how many succeeded."""
    return sum(cleanup_job(p.job_id, p.reason) for p in PendingCleanup.objects.all()[:500])
