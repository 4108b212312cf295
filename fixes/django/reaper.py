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

from fixes.assess import Condition, JobCounts, Observation, QueueSnapshot, Verdict, assess
from fixes.django import runtime
from fixes.django.cleanup import retry_pending
from fixes.django.models import Observation as StoredObservation

log = logging.getLogger(__name__)

ACTIONABLE = {Condition.DEAD_TASKS, Condition.STUCK_NO_FETCHER, Condition.STREAM_LOST, Condition.CONSUMER_LOST}
DETAIL_LIMIT = 20
SNAPSHOT_CONCURRENCY = 32  # NATS snapshots in flight at once during a sweep
SNAPSHOT_TIMEOUT = 5.0  # s per snapshot, as one bridge call per job allowed; longer counts as unreachable
STORE_BATCH = 1000


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
    skipped: list[int] = field(default_factory=list)  # jobs whose look raised: logged, the others go on


def sweep() -> SweepResult:
    """One pass over running async jobs. Acts only on a condition seen on two consecutive passes.

    Batched: one query for the stored observations, the NATS snapshots concurrently in one bridge call,
    the app's counts in one call when the binding has `counts_many`, one upsert of the observations.
    Jobs are judged in list order up to the first one NATS did not answer for, as one by one; a job
    whose own look or verdict raises is skipped and logged.
    """
    config, binding, started = runtime.config(), runtime.binding(), time.monotonic()
    result = SweepResult()
    if not config.sweep:
        return result
    jobs = list(binding.model.objects.filter(status__in=binding.running_states))
    watched = [job for job in jobs if binding.is_async(job) and job.status in binding.running_states]
    stored = {o.job_id: o.data for o in StoredObservation.objects.filter(job_id__in=[j.pk for j in jobs])}
    snapshots = _snapshots(watched)
    judged = _until_unreachable(watched, snapshots)  # no verdict while NATS is down
    result.unreachable = len(judged) < len(watched)
    result.looked_at = len(judged) + result.unreachable
    counts = _counts(binding, judged)
    rows: dict[int, dict] = {}
    to_fail: list[tuple[object, Verdict]] = []
    for job in judged:
        snapshot = snapshots[job.pk]
        try:
            if isinstance(snapshot, Exception):
                raise snapshot
            if isinstance(counts[job.pk], Exception):
                raise counts[job.pk]
            current = Observation(snapshot=snapshot, counts=counts[job.pk])
            data = stored.get(job.pk, {})
            previous = _load(data, job)
            watch_since = _watch_since(data, previous, current)
            current = _idle_at_most_since(current, watch_since)
            verdict = assess(current, runtime.layout(), config, previous=previous)
            rows[job.pk] = {**_dump(current, job), "watch_since": watch_since}
        except Exception as exc:
            result.skipped.append(job.pk)
            log.warning("sweep: job %s skipped: %r", job.pk, exc, exc_info=len(result.skipped) == 1)
            continue
        if verdict.act and verdict.condition in ACTIONABLE:
            to_fail.append((job, verdict))
    if result.unreachable:
        _mark_outage(jobs, {**stored, **rows})
    else:
        _store(rows)
    for job, verdict in to_fail:
        try:
            if fail_job(job.pk, verdict, job.attempt):
                result.failed.append(job.pk)
        except Exception as exc:
            result.skipped.append(job.pk)
            log.warning("sweep: failing job %s raised: %r", job.pk, exc, exc_info=exc)
    if not result.unreachable:
        result.cleanups_retried = retry_pending()
        StoredObservation.objects.exclude(job_id__in=[j.pk for j in jobs]).delete()
    result.seconds = time.monotonic() - started
    if result.failed or result.cleanups_retried or result.skipped:
        log.warning("sweep: %s", result)
    return result


def _snapshots(jobs) -> dict[int, QueueSnapshot | Exception]:
    """One bridge call; QueueUnavailable when the bridge is not connected at all (as observe() raises)."""
    if not jobs:
        return {}
    ids = [job.pk for job in jobs]
    rounds = -(-len(ids) // SNAPSHOT_CONCURRENCY)
    return runtime.bridge().call(lambda q: q.snapshots(ids, SNAPSHOT_CONCURRENCY, SNAPSHOT_TIMEOUT),
                                 timeout=SNAPSHOT_TIMEOUT * rounds + 5.0)


def _until_unreachable(jobs, snapshots: dict) -> list:
    """The jobs judged this pass: those before the first one NATS did not answer for."""
    judged = []
    for job in jobs:
        snapshot = snapshots[job.pk]
        if isinstance(snapshot, QueueSnapshot) and not snapshot.reachable:
            break
        judged.append(job)
    return judged


def _counts(binding, jobs) -> dict[int, JobCounts | Exception]:
    """The binding's counts_many when it has one (an error of the whole call, e.g. Redis down, stands for
    every job), else counts() per job, each job's error in its place."""
    if not jobs:
        return {}
    many = getattr(binding, "counts_many", None)
    if many is not None:
        try:
            found = many(jobs)
        except Exception as exc:
            return {job.pk: exc for job in jobs}
        missing = KeyError("counts_many returned nothing for this job")
        return {job.pk: found.get(job.pk, missing) for job in jobs}
    found: dict[int, JobCounts | Exception] = {}
    for job in jobs:
        try:
            found[job.pk] = binding.counts(job)
        except Exception as exc:
            found[job.pk] = exc
    return found


def _store(rows: dict[int, dict]) -> None:
    """Upsert the pass's observations in one statement (per batch of STORE_BATCH)."""
    if rows:
        StoredObservation.objects.bulk_create(
            [StoredObservation(job_id=job_id, data=data) for job_id, data in rows.items()],
            batch_size=STORE_BATCH, update_conflicts=True, unique_fields=["job_id"],
            update_fields=["data", "updated_at"])


def _mark_outage(jobs, known: dict[int, dict]) -> None:
    """Every running job's stored observation (this pass's when it got one) gets the outage mark."""
    _store({job.pk: {**known.get(job.pk, {}), "outage": True} for job in jobs})


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
    if "snapshot" not in data or data.get("attempt") != getattr(job, "attempt", None):
        return None  # an observation of an earlier attempt proves nothing about this one
    return Observation(snapshot=QueueSnapshot.from_dict(data["snapshot"]), counts=JobCounts(**data["counts"]))
