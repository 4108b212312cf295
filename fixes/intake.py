"""Result intake decisions, pure: which reply subjects may be queued, stored and acked."""

from __future__ import annotations

from fixes.layout import QueueLayout, belongs_to_attempt, parse_reply_subject

INVALID, STALE, FORGED = "rejected_invalid", "rejected_stale", "rejected_forged"


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


def bind_to_handouts(reply_subjects: list[str], images: list[str | None], handed: dict[int, str | None],
                     triaged: list[str | None]) -> list[str | None]:
    """Per reply subject that `triage` let through: None if the server handed its delivery out in this attempt
    (`handed`: stream_seq -> image) for the image the result names, else FORGED. A subject built by hand (a
    made-up timestamp, a sequence nobody was given) or another worker's task posted for a different image is
    never queued or acked."""
    out = list(triaged)
    for i, (subject, image, why) in enumerate(zip(reply_subjects, images, triaged, strict=True)):
        if why is not None:
            continue
        seq = parse_reply_subject(subject).stream_seq
        if seq not in handed or (image is not None and handed[seq] is not None and image != handed[seq]):
            out[i] = FORGED
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


def latest_per_task(deliveries: list) -> list:
    """One delivery per task, the newest: after a cluster failover a pull can bring the same task twice (the new
    consumer leader redelivers what the old one had handed out), and a worker must not get it twice."""
    newest = {}
    for delivery in deliveries:
        if delivery.stream_seq not in newest or delivery.num_delivered >= newest[delivery.stream_seq].num_delivered:
            newest[delivery.stream_seq] = delivery
    return sorted(newest.values(), key=lambda d: d.stream_seq)
