"""The reaper: turns a dead, stuck or lost job into FAILURE with a reason on the job's log.

`check_inline` runs inside /tasks/ when a worker finds nothing to do (fast path while workers
poll); `sweep` runs from Celery beat and needs no worker at all.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field

from django.db import transaction

from fixes.assess import Condition, Observation, QueueSnapshot, Verdict, assess
from fixes.django import runtime
from fixes.django.cleanup import retry_pending
from fixes.django.models import Observation as StoredObservation

log = logging.getLogger(__name__)

ACTIONABLE = {Condition.DEAD_TASKS, Condition.STUCK_NO_FETCHER, Condition.STREAM_LOST, Condition.CONSUMER_LOST}
DETAIL_LIMIT = 20


def observe(job) -> Observation:
    snapshot = runtime.bridge().call(lambda q: q.snapshot(job.pk))
    return Observation(snapshot=snapshot, counts=runtime.binding().counts(job))


def check_inline(job) -> Verdict | None:
    """Assess a job whose /tasks/ call came back empty; fail it if it is dead or lost."""
    config = runtime.config()
    if not config.inline_reaper:
        return None
    first = observe(job)
    verdict = assess(first, runtime.layout(), config)
    if verdict.condition not in (Condition.DEAD_TASKS, Condition.STREAM_LOST, Condition.CONSUMER_LOST):
        return verdict
    # the two NATS calls are not atomic: confirm on a second look before acting
    verdict = assess(observe(job), runtime.layout(), config, previous=first)
    if verdict.act:
        fail_job(job.pk, verdict, expected_attempt=job.attempt)
    return verdict


def fail_job(job_id: int, verdict: Verdict, expected_attempt: int | None = None) -> bool:
    binding = runtime.binding()
    reason = verdict.reason + dead_letter_detail(job_id, verdict)
    with transaction.atomic():
        job = binding.model.objects.select_for_update().get(pk=job_id)
        if job.status not in binding.running_states:
            return False  # finished or restarted meanwhile
        if expected_attempt is not None and getattr(job, "attempt", expected_attempt) != expected_attempt:
            return False
        if verdict.condition is Condition.STUCK_NO_FETCHER and runtime.config().stuck_action == "warn":
            binding.log(job, reason, level="WARNING")
            return False
        binding.fail(job, reason)
    log.warning("job %s failed by the reaper: %s", job_id, reason)
    return True


def dead_letter_detail(job_id: int, verdict: Verdict) -> str:
    """Name the dead tasks from the durable advisory stream: which images, after how many deliveries."""
    if verdict.condition is not Condition.DEAD_TASKS or not runtime.config().advisories:
        return ""
    binding = runtime.binding()
    job = binding.model.objects.get(pk=job_id)
    since = binding.attempt_started(job)
    try:
        letters = runtime.bridge().call(lambda q: q.dead_letters(job_id, since=since))
    except Exception as exc:
        log.info("no dead-letter detail for job %s: %r", job_id, exc)
        return ""
    if not letters:
        return ""
    parts = []
    for letter in letters[:DETAIL_LIMIT]:
        image = _image_of(job_id, letter.stream_seq)
        what = f"image {image}" if image else f"seq {letter.stream_seq}"
        parts.append(f"{what} ({letter.kind}, {letter.deliveries} deliveries)")
    more = f" (+{len(letters) - DETAIL_LIMIT} more)" if len(letters) > DETAIL_LIMIT else ""
    return f". Dead letters: {', '.join(parts)}{more}"


def _image_of(job_id: int, seq: int) -> str | None:
    import json

    try:
        data = runtime.bridge().call(lambda q: q.read_task(job_id, seq))
        return str(json.loads(data)["image_id"]) if data else None
    except Exception:
        return None


@dataclass
class SweepResult:
    looked_at: int = 0
    failed: list[int] = field(default_factory=list)
    unreachable: bool = False
    cleanups_retried: int = 0
    seconds: float = 0.0


def sweep() -> SweepResult:
    """One pass over running async jobs. Acts only on a condition seen on two consecutive passes."""
    config, binding, started = runtime.config(), runtime.binding(), time.monotonic()
    result = SweepResult()
    if not config.sweep:
        return result
    jobs = list(binding.model.objects.filter(status__in=binding.running_states))
    for job in jobs:
        if not binding.is_async(job) or job.status not in binding.running_states:
            continue
        result.looked_at += 1
        current = observe(job)
        if not current.snapshot.reachable:
            result.unreachable = True
            _mark_outage(jobs)  # no verdict while NATS is down
            break
        stored = StoredObservation.objects.filter(job_id=job.pk).first()
        data = stored.data if stored else {}
        previous = _load(data, job)
        watch_since = _watch_since(data, previous, current)
        current = _idle_at_most_since(current, watch_since)
        verdict = assess(current, runtime.layout(), config, previous=previous)
        StoredObservation.objects.update_or_create(
            job_id=job.pk, defaults={"data": {**_dump(current, job), "watch_since": watch_since}})
        if verdict.act and verdict.condition in ACTIONABLE and fail_job(job.pk, verdict, job.attempt):
            result.failed.append(job.pk)
    if not result.unreachable:
        result.cleanups_retried = retry_pending()
        StoredObservation.objects.exclude(job_id__in=[j.pk for j in jobs]).delete()
    result.seconds = time.monotonic() - started
    if result.failed or result.cleanups_retried:
        log.warning("sweep: %s", result)
    return result


def _mark_outage(jobs) -> None:
    for job in jobs:
        stored, _ = StoredObservation.objects.get_or_create(job_id=job.pk, defaults={"data": {}})
        stored.data["outage"] = True
        stored.save(update_fields=["data", "updated_at"])


def _watch_since(data: dict, previous: Observation | None, current: Observation) -> float | None:
    """Since when we could have seen the workers' activity: an outage or a server restart restarts the
    clock, so workers that could not fetch while NATS was away are not taken for dead."""
    now = current.snapshot.now
    if data.get("outage"):
        return now
    if previous is not None and previous.snapshot.server_id != current.snapshot.server_id:
        return now
    return data.get("watch_since")


def _idle_at_most_since(observation: Observation, since: float | None) -> Observation:
    last_active = observation.snapshot.last_active
    if since is None or last_active is None or last_active >= since:
        return observation
    return dataclasses.replace(observation, snapshot=dataclasses.replace(observation.snapshot, last_active=since))


def _dump(observation: Observation, job) -> dict:
    counts = observation.counts
    return {
        "attempt": getattr(job, "attempt", None),
        "snapshot": observation.snapshot.to_dict(),
        "counts": {"expected": counts.expected, "processed": counts.processed, "failed": counts.failed,
                   "results_queued": counts.results_queued},
    }


def _load(data: dict, job) -> Observation | None:
    from fixes.assess import JobCounts

    if "snapshot" not in data or data.get("attempt") != getattr(job, "attempt", None):
        return None  # an observation of an earlier attempt proves nothing about this one
    return Observation(snapshot=QueueSnapshot.from_dict(data["snapshot"]), counts=JobCounts(**data["counts"]))
