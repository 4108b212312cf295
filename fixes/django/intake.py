"""Result intake, at the two places a host handles a result:

* `accept` in the /result/ view, before the results are handed to the task queue: refuses reply subjects
  that are no ack subject of the job's current attempt, records the others as queued (a job whose results
  wait in the queue is not dead), and restarts their tasks' ack_wait while they wait.
* `admit` in the task that stores them, under the job's row lock: fences again (a Start may have come in
  between) and drops a second result for an image in the same attempt; then `acknowledge` after commit.
"""

from __future__ import annotations

import time

from fixes.django import runtime
from fixes.django.models import Handout, ResultRecord
from fixes.intake import bind_to_handouts, first_per_image, triage
from fixes.jetstream.errors import QueueUnavailable
from fixes.layout import parse_reply_subject


def accept(job, reply_subjects: list[str], results: list[dict]) -> list[str | None]:
    """Per result: None (queue it) or why it is refused ("rejected_invalid", "rejected_stale", or
    "rejected_forged": no task of this attempt was handed out under that reply subject for that image)."""
    config, binding = runtime.config(), runtime.binding()
    attempt = binding.attempt(job)
    refused = triage(reply_subjects, runtime.layout(), job.pk, attempt) if config.fencing else [None] * len(results)
    if config.fencing:
        refused = _bound(job.pk, attempt, reply_subjects, [_image(binding, r) for r in results], refused)
    taken = [i for i, why in enumerate(refused) if why is None]
    if taken and (config.sweep or config.inline_reaper):
        now, images = time.time(), {_image(binding, results[i]) for i in taken}
        ResultRecord.objects.bulk_create(
            [ResultRecord(job_id=job.pk, attempt=attempt, image=image, queued_at=now)
             for image in images if image is not None], ignore_conflicts=True)
    if taken and config.extend_on_result:
        try:
            runtime.bridge().call(lambda q: q.in_progress(reply_subjects[i] for i in taken))
        except QueueUnavailable:
            pass  # the results are queued; at worst a task is redelivered and its result stored once
    return refused


def _bound(job_id: int, attempt: int, subjects: list[str], images: list[str | None],
           triaged: list[str | None]) -> list[str | None]:
    seqs = {parse_reply_subject(s).stream_seq for s, why in zip(subjects, triaged, strict=True) if why is None}
    return bind_to_handouts(subjects, images, _handouts(job_id, attempt, seqs), triaged) if seqs else triaged


def handed_out_images(job, reply_subjects: list[str]) -> list[str | None]:
    """Per reply subject, the image whose task the server handed out under it in the job's current attempt
    (None when unknown, or without `fencing`, which records the handouts). An error result may name no image
    (the worker protocol allows `image_id: null`): this says which image failed."""
    if not runtime.config().fencing:
        return [None] * len(reply_subjects)
    seqs = [_seq(subject) for subject in reply_subjects]
    handed = _handouts(job.pk, runtime.binding().attempt(job), {s for s in seqs if s is not None})
    return [None if seq is None else handed.get(seq) for seq in seqs]


def _handouts(job_id: int, attempt: int, seqs: set[int]) -> dict[int, str | None]:
    """stream_seq -> image of the deliveries handed out in the attempt, among `seqs`."""
    if not seqs:
        return {}
    return dict(Handout.objects.filter(job_id=job_id, attempt=attempt, stream_seq__in=seqs)
                .values_list("stream_seq", "image"))


def _seq(subject: str) -> int | None:
    try:
        return parse_reply_subject(subject).stream_seq
    except ValueError:
        return None


def extend(job, reply_subjects: list[str]) -> int:
    """A worker says it is still busy with these tasks: restart their ack_wait (+WPI); returns how many."""
    if runtime.config().fencing:
        kept = triage(reply_subjects, runtime.layout(), job.pk, runtime.binding().attempt(job))
        reply_subjects = [s for s, why in zip(reply_subjects, kept, strict=True) if why is None]
    runtime.bridge().call(lambda q: q.in_progress(reply_subjects))
    return len(reply_subjects)


def admit(job, items: list[tuple[str, dict]]) -> tuple[list[tuple[str, dict]], list[str]]:
    """Call with the job's row locked: (the results to store, the reply subjects to ack once committed).

    A result of an earlier attempt is neither stored nor acked; a repeat for an image already stored in
    this attempt is acked, not stored."""
    config, binding = runtime.config(), runtime.binding()
    attempt = binding.attempt(job)
    if config.fencing:
        kept = triage([s for s, _ in items], runtime.layout(), job.pk, attempt)
        items = [item for item, why in zip(items, kept, strict=True) if why is None]
    acks = [subject for subject, _ in items]
    if not (config.dedupe_results or config.sweep or config.inline_reaper):
        return items, acks
    images = [_image(binding, result) for _, result in items]
    if config.dedupe_results:
        stored = set(ResultRecord.objects.filter(job_id=job.pk, attempt=attempt, stored=True,
                                                 image__in={i for i in images if i}).values_list("image", flat=True))
        first = first_per_image(images, stored)
        items = [item for item, keep in zip(items, first, strict=True) if keep]
        images = [image for image, keep in zip(images, first, strict=True) if keep]
    now = time.time()
    ResultRecord.objects.bulk_create(  # stored: no longer counts as queued, and the next repeat is dropped
        [ResultRecord(job_id=job.pk, attempt=attempt, image=i, queued_at=now, stored=True) for i in set(images) if i],
        update_conflicts=True, unique_fields=["job_id", "attempt", "image"], update_fields=["stored"])
    return items, acks


def acknowledge(reply_subjects: list[str]) -> None:
    """Ack the stored results' tasks (last: a crash before this means a redelivery, never a lost result)."""
    if reply_subjects:
        runtime.bridge().call(lambda q: q.ack_all(reply_subjects))


def _image(binding, result: dict) -> str | None:
    image = binding.image_of_result(result)
    return None if image is None else str(image)
