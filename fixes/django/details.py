"""The detail a reaper failure adds to its reason, read from NATS on this rare path: which dead tasks the
captured advisories name, which images a lost stream can never hand out."""

from __future__ import annotations

import asyncio
import logging

from fixes import plan
from fixes.django import runtime
from fixes.model import Condition

log = logging.getLogger(__name__)

DETAIL_LIMIT = 20
HELD_READ_LIMIT = 5000  # a lost-tasks failure reads at most this many held tasks to name the lost images
HELD_READ_CONCURRENCY = 64


def dead_letters(binding, action: plan.Action) -> str:
    """Name the dead tasks from the captured advisories: which images, after how many deliveries."""
    if action.assessment.condition is not Condition.DEAD_TASKS or not runtime.config().advisories:
        return ""
    job_id, attempt = action.job_id, action.attempt

    async def read(q):
        letters = await q.dead_letters(job_id, attempt)
        return [(letter, await _quiet(q.read_task(job_id, letter.stream_seq))) for letter in letters[:DETAIL_LIMIT]], len(letters)

    try:
        named, total = runtime.bridge().call(read)
    except Exception as exc:
        log.info("no dead-letter detail for job %s: %r", job_id, exc)
        return ""
    parts = []
    for letter, payload in named:
        image = binding.image_of_task(payload) if payload else None
        parts.append(f"{f'image {image}' if image else f'seq {letter.stream_seq}'} ({letter.deliveries} deliveries)")
    more = f" (+{total - DETAIL_LIMIT} more)" if total > DETAIL_LIMIT else ""
    return f". Dead letters: {', '.join(parts)}{more}" if parts else ""


def lost_images(binding, action: plan.Action) -> str:
    """Name the images whose tasks are gone: the unprocessed ones (the binding's sample) that no task still
    held in the stream is for. Reads the held tasks: a rare path, and bounded."""
    judged = action.assessment
    if judged.condition is not Condition.TASKS_LOST:
        return ""
    job_id, seen = action.job_id, judged.evidence
    unprocessed = seen.get("unprocessed_image_ids") or []
    seqs = range(seen.get("first_seq") or 1, (seen.get("last_seq") or 0) + 1)
    if not unprocessed or len(seqs) > HELD_READ_LIMIT:
        return ""

    async def read(q):
        gate = asyncio.Semaphore(HELD_READ_CONCURRENCY)

        async def one(seq):
            async with gate:
                return await q.read_task(job_id, seq)

        return await asyncio.gather(*(one(seq) for seq in seqs))

    try:
        payloads = runtime.bridge().call(read) if seqs else []
    except Exception as exc:
        log.info("no lost-image detail for job %s: %r", job_id, exc)
        return ""
    held = {binding.image_of_task(p) for p in payloads if p}
    lost = [image for image in unprocessed if image not in held]
    if not lost:
        return ""
    complete = len(unprocessed) >= seen.get("remaining", 0)
    more = (len(lost) if complete else max(judged.dead, len(lost))) - DETAIL_LIMIT
    return (f". Images that can never be handed out: {', '.join(lost[:DETAIL_LIMIT])}"
            + (f" (+{more} more)" if more > 0 else ""))


async def _quiet(call):
    try:
        return await call
    except Exception:
        return None
