"""Fencing: a result is accepted only if its reply_subject belongs to the job's current attempt."""

from __future__ import annotations

from fixes.django import runtime
from fixes.queue import belongs_to_attempt, parse_reply_subject


def rejection(job, reply_subject: str) -> str | None:
    """None if the result may be counted and acked, else a short reason (per-task status)."""
    if not runtime.config().fencing:
        return None
    try:
        ref = parse_reply_subject(reply_subject)
    except ValueError:
        return "rejected_invalid"
    started = runtime.binding().attempt_started(job)
    if started is None or not belongs_to_attempt(ref, runtime.layout(), job.pk, started):
        return "rejected_stale"
    return None
