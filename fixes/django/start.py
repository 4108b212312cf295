"""Start and Retry: with idempotent_start one attempt at a time, the previous attempt's leftovers deleted
first, each image published once (Nats-Msg-Id); off, what Antenna does (no lock, publish on top)."""

from __future__ import annotations

import time

from django.db import transaction

from fixes.django import runtime
from fixes.plan import start_overdue


class StartRefused(Exception):
    """The job is already running; the caller answers 409 with the job's state."""

    def __init__(self, job):
        self.job = job
        super().__init__(f"job {job.pk} is {job.status}; cancel it or wait for it to finish before starting again")


def begin(job_id: int, status: str):
    """Begin the job's next attempt in `status` (PENDING, RETRY) and return the saved job.

    Raises StartRefused while the job is busy (but a Start whose run published nothing within start_timeout
    is taken over: its run was lost), or QueueUnavailable when NATS cannot confirm the leftovers
    are gone (then nothing was changed and the caller may retry).
    """
    binding = runtime.binding()
    if not runtime.config().idempotent_start:
        job = binding.model.objects.get(pk=job_id)
        binding.begin_attempt(job, binding.attempt(job) + 1, status)
        job.save()
        _began(job_id, binding.attempt(job))
        return job
    from fixes.django.models import Handout, PendingCleanup, ResultRecord, SweepRecord

    with transaction.atomic():
        job = binding.model.objects.select_for_update().get(pk=job_id)
        lost = _lost_run(binding, job)
        if job.status in binding.busy_states and not lost:
            raise StartRefused(job)
        runtime.bridge().call(lambda q: q.delete(job_id))
        binding.clear_state(job_id)
        binding.begin_attempt(job, binding.attempt(job) + 1, status)
        job.save()
        for model in (SweepRecord, PendingCleanup, ResultRecord, Handout):
            model.objects.filter(job_id=job_id).delete()
        _began(job_id, binding.attempt(job))
        if lost:
            binding.log(job, f"{lost}; this Start begins attempt {binding.attempt(job)}", level="WARNING")
    return job


def _lost_run(binding, job) -> str:
    """Why a busy job may be started anyway: its Start's run published nothing within start_timeout."""
    from fixes.django.models import AttemptRecord
    if job.status not in binding.startable_states:  # PENDING, or a RETRY: the publish record tells
        return ""
    attempt = binding.attempt(job)
    record = AttemptRecord.objects.filter(job_id=job.pk, attempt=attempt).first()
    if record is None or not start_overdue(record.began_at, record.published is not None, time.time(), runtime.config()):
        return ""
    return f"attempt {attempt} published nothing within {runtime.config().start_timeout:g}s of its Start"


def _began(job_id: int, attempt: int) -> None:
    from fixes.django.models import AttemptRecord

    fields = {"began_at": time.time(), "published": None, "published_at": None, "published_server": None}
    AttemptRecord.objects.update_or_create(job_id=job_id, attempt=attempt, defaults=fields)


def superseded(job, attempt: int) -> bool:
    """A queued run of `attempt` that must not publish: a later Start or a cancel came first."""
    if not runtime.config().idempotent_start:
        return False  # Antenna runs every queued Start, whatever happened since
    binding = runtime.binding()
    return binding.attempt(job) != attempt or job.status not in binding.startable_states


def publish(job_id: int, attempt: int, tasks: list[tuple[object, bytes]]) -> int:
    """Create the attempt's stream and consumer and publish (image_id, payload) tasks; returns how many were
    stored. Raises QueueUnavailable (retry the run later: nothing is published twice).

    With idempotent_start: never on top of a live stream (a re-run of the same Celery task publishes
    nothing again), and if the job ended while this attempt was published, its queue is deleted again: the
    job's cleanup may have run before the stream existed.
    """
    config, layout = runtime.config(), runtime.layout()
    fenced = config.idempotent_start
    items = [(layout.msg_id(job_id, attempt, image) if fenced else None, data) for image, data in tasks]

    async def run(q):
        if config.advisories:  # before any task can die: advisories are lost if nobody stores them
            await q.advisory_stream()
        if not fenced:
            await q.ensure(job_id, attempt)
            stored = await q.publish(job_id, items)
        else:
            await q.create(job_id, attempt)
            held = (await q.snapshot(job_id, attempt)).last_seq
            stored = 0 if held >= len(items) > 0 else await q.publish(job_id, items)
        return stored, await q.snapshot(job_id, attempt)

    stored, after = runtime.bridge().call(run, timeout=max(30.0, len(items) / 1000))
    if after.reachable and after.stream_exists:
        _published(job_id, attempt, after)
    if fenced:
        from fixes.django.cleanup import cleanup_job

        cleanup_job(job_id, attempt, reason=f"attempt {attempt} published after the job ended")
    return stored


def _published(job_id: int, attempt: int, after) -> None:
    """Record what the attempt's stream holds now: the reaper compares the stream with it (lost tasks)."""
    from fixes.django.models import AttemptRecord

    now = time.time()
    fields = {"published": after.last_seq, "published_at": now, "published_server": after.server_id}
    if not AttemptRecord.objects.filter(job_id=job_id, attempt=attempt).update(**fields):
        AttemptRecord.objects.get_or_create(job_id=job_id, attempt=attempt, defaults={"began_at": now, **fields})
