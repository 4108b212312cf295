"""Result intake decisions, pure: which reply subjects may be queued, stored and acked."""

from __future__ import annotations

from fixes.layout import QueueLayout, belongs_to_attempt, parse_reply_subject

INVALID, STALE = "rejected_invalid", "rejected_stale"


def triage(reply_subjects: list[str], layout: QueueLayout, job_id: int, attempt: int) -> list[str | None]:
    """Per reply subject: None (it acks a delivery of the job's current attempt), INVALID (no JetStream ack
    subject: never publish to it) or STALE (a delivery of another job or an earlier attempt)."""
    out: list[str | None] = []
    for subject in reply_subjects:
        try:
            ref = parse_reply_subject(subject)
        except ValueError:
            out.append(INVALID)
            continue
        out.append(None if belongs_to_attempt(ref, layout, job_id, attempt) else STALE)
    return out


def first_per_image(images: list[str | None], stored: set[str]) -> list[bool]:
    """Which results to store: the first for each image not stored before in this attempt (a result naming
    no image is left to the host)."""
    seen, out = set(stored), []
    for image in images:
        out.append(image is None or image not in seen)
        if image is not None:
            seen.add(image)
    return out
