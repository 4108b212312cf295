"""The reaper: turns a dead, stuck or lost job into FAILURE with a reason on the job's log.

`hand_out` serves /tasks/ and runs `check_inline` when a worker finds nothing to do (the fast path while
workers poll); `sweep` runs from Celery beat and needs no worker at all (fixes.plan decides, the store in
fixes.django.store acts).
"""

from __future__ import annotations

import logging
import time

from fixes import plan
from fixes.assess import assess, cannot_be_dead_or_lost
from fixes.django import runtime
from fixes.django.models import Handout
from fixes.django.store import BridgeReader, OrmStore, not_published_yet, published_tasks
from fixes.intake import latest_per_task
from fixes.jetstream.errors import QueueMissing, QueueUnavailable
from fixes.model import LOST, Assessment, Condition, Observation
from fixes.sweep import SweepResult, run_once

log = logging.getLogger(__name__)
_healthy_until: dict[tuple[int, int], float] = {}  # (job, attempt) -> monotonic time its next inline check is due
_REMEMBERED = 10_000  # entries kept before the expired ones are dropped

def hand_out(job, batch: int, timeout: float) -> list:
    """Reserve up to `batch` deliveries of the job's current attempt; when there are none, look whether the
    job is dead or lost. Raises QueueUnavailable (answer 503) when NATS is not answering."""
    attempt = runtime.binding().attempt(job)
    try:
        deliveries = runtime.bridge().call(lambda q: q.reserve(job.pk, batch, timeout, attempt), timeout=timeout + 5)
    except QueueMissing:
        deliveries = []  # "drained" to the worker; the check below tells a lost stream apart
    if not deliveries:
        check_inline(job)
    elif runtime.config().fencing:
        deliveries = latest_per_task(deliveries)
        record_handouts(job.pk, attempt, deliveries)
    return deliveries


def record_handouts(job_id: int, attempt: int, deliveries: list) -> None:
    """What was handed out, one upsert per call: `intake.accept` takes only results for these."""
    binding, now = runtime.binding(), time.time()
    Handout.objects.bulk_create(
        [Handout(job_id=job_id, attempt=attempt, stream_seq=d.stream_seq, image=_image_of_task(binding, d.data),
                 handed_at=now) for d in deliveries],
        update_conflicts=True, unique_fields=["job_id", "attempt", "stream_seq"], update_fields=["image", "handed_at"])


def _image_of_task(binding, payload: bytes) -> str | None:
    try:
        image = binding.image_of_task(payload)
    except Exception:  # a payload the host cannot read: the handout still binds the sequence
        return None
    return None if image is None else str(image)[:64]


def check_inline(job) -> Assessment | None:
    """Assess a job whose /tasks/ call came back empty; fail it if it is dead or lost. None: the check is off,
    or NATS alone shows the job cannot be dead or lost (tasks pending or in flight, none missing)."""
    config = runtime.config()
    if not config.inline_reaper:
        return None
    attempt = runtime.binding().attempt(job)
    if time.monotonic() < _healthy_until.get((job.pk, attempt), 0.0):
        return None  # found healthy less than inline_recheck ago, in this process
    snapshot = runtime.bridge().begin(lambda q: q.snapshot(job.pk, attempt, together=True))
    published = published_tasks(job.pk, attempt)  # read while NATS answers
    snapshot = snapshot()
    if not snapshot.reachable:
        raise QueueUnavailable("NATS did not answer")  # an empty fetch from a hung server is no "drained"
    if cannot_be_dead_or_lost(snapshot, published):
        _remember_healthy((job.pk, attempt), config)
        return None  # the common empty call (others hold the last tasks): no counts read
    first = _with_counts(job, snapshot, queued=False)  # queued results only matter to a job that looks dead
    judged = assess(first, runtime.layout(), config)
    if judged.condition is not Condition.DEAD_TASKS and judged.condition not in LOST:
        return judged
    if not_published_yet(job, judged.condition, runtime.binding()):
        return judged
    if judged.condition in LOST and runtime.layout().replicas > 1:
        return judged  # its node may be a stale leader cut off from the cluster: the sweep outwaits that
    judged = assess(observe(job), runtime.layout(), config, previous=first)  # the two reads are not atomic
    if judged.act:
        OrmStore().fail(plan.Action(job.pk, attempt, "fail", judged))
    return judged


def _remember_healthy(key: tuple[int, int], config) -> None:
    window = runtime.layout().ack_wait / 4 if config.inline_recheck is None else config.inline_recheck
    if window <= 0:
        return
    now = time.monotonic()
    if len(_healthy_until) >= _REMEMBERED:
        for stale in [k for k, due in _healthy_until.items() if due <= now]:
            _healthy_until.pop(stale, None)
    _healthy_until[key] = now + window


def observe(job, queued: bool = True) -> Observation:
    attempt = runtime.binding().attempt(job)
    return _with_counts(job, runtime.bridge().call(lambda q: q.snapshot(job.pk, attempt)), queued)


def _with_counts(job, snapshot, queued: bool) -> Observation:
    counts = OrmStore().counts_of([job], queued)[job.pk]
    if isinstance(counts, Exception):
        raise counts  # e.g. Redis down: the host answers 503
    return Observation(snapshot, counts)


def sweep() -> SweepResult:
    return run_once(OrmStore(), BridgeReader(), runtime.layout(), runtime.config())
