"""The sweep's I/O over Django: `OrmStore` (fixes.sweep.SweepStore over the ORM and the host's binding) and
`BridgeReader` (fixes.sweep.QueueReader over the NATS bridge). The decisions are fixes.plan's."""

from __future__ import annotations

import dataclasses
import json
import logging
import time

from django.db import connection, transaction
from django.db.models import Count

from fixes import plan
from fixes.django import details, runtime
from fixes.django.cleanup import retry_pending
from fixes.django.models import AttemptRecord, ResultRecord, SweepRecord
from fixes.jetstream.inspect import SNAPSHOT_CONCURRENCY, SNAPSHOT_TIMEOUT
from fixes.model import Condition, JobCounts

log = logging.getLogger(__name__)

STORE_BATCH = 5000


class BridgeReader:
    def snapshots(self, jobs: dict[int, int]) -> dict:
        rounds = -(-len(jobs) // SNAPSHOT_CONCURRENCY)
        return runtime.bridge().call(lambda q: q.snapshots(jobs, SNAPSHOT_CONCURRENCY, SNAPSHOT_TIMEOUT),
                                     timeout=SNAPSHOT_TIMEOUT * rounds + 5.0)


class OrmStore:
    """fixes.sweep.SweepStore over the Django ORM and the host's binding."""

    def __init__(self):
        self.binding = runtime.binding()
        self._jobs: dict[int, object] = {}

    def running(self) -> dict[int, int]:
        """Running async jobs, less those whose run has not published yet (a RETRY is both startable and
        running): `waiting` times those from their Start."""
        b = self.binding
        rows = b.model.objects.filter(status__in=b.running_states).defer(*_bulky_fields(b.model))
        jobs = {job.pk: job for job in rows if b.is_async(job)}
        unpublished = _unpublished(b, [job for job in jobs.values() if job.status in b.startable_states])
        self._jobs = {pk: job for pk, job in jobs.items() if pk not in unpublished}
        return {pk: b.attempt(job) for pk, job in self._jobs.items()}

    def waiting(self) -> dict[int, plan.Waiting]:
        """Async jobs held up before NATS: a Start whose run has not published (began_at from the app's
        AttemptRecord), a cancel that never ended."""
        b = self.binding
        unstarted, stopping = unstarted_states(b), stopping_states(b)
        jobs = [job for job in b.model.objects.filter(status__in=unstarted + stopping) if b.is_async(job)]
        retried = [job for job in b.model.objects.filter(status__in=startable_running_states(b)) if b.is_async(job)]
        unpublished = _unpublished(b, retried)
        jobs += [job for job in retried if job.pk in unpublished]
        began = {(r.job_id, r.attempt): r.began_at
                 for r in AttemptRecord.objects.filter(job_id__in=[job.pk for job in jobs])}
        out = {}
        for job in jobs:
            attempt = b.attempt(job)
            if job.status in stopping:
                out[job.pk] = plan.Waiting(attempt, "cancel")
            elif attempt > 0:  # never Started (Antenna's CREATED): it waits for nobody
                out[job.pk] = plan.Waiting(attempt, "start", began.get((job.pk, attempt)))
        return out

    def previous(self, job_ids: list[int]) -> dict[int, plan.Record]:
        wanted = set(job_ids)  # every record is of a job the last pass looked at: no IN list of them all
        return {job_id: plan.Record.from_dict(data) for job_id, data in SweepRecord.objects.values_list("job_id", "data")
                if job_id in wanted}

    def counts(self, job_ids: list[int]) -> dict[int, JobCounts | Exception]:
        return self.counts_of([self._jobs[i] for i in job_ids])

    def counts_of(self, jobs: list, queued: bool = True) -> dict[int, JobCounts | Exception]:
        """The binding's counts (counts_many when it has one: an error of the whole call stands for every job),
        plus the results each job's current attempt has queued within the backlog grace, and what the attempt
        published (AttemptRecord)."""
        b = self.binding
        many = getattr(b, "counts_many", None) or (lambda js: {j.pk: _or_error(b.counts, j) for j in js})
        found = _or_error(many, jobs)
        found = found if isinstance(found, dict) else {job.pk: found for job in jobs}
        attempts = {job.pk: b.attempt(job) for job in jobs}
        queued = self._queued(attempts) if queued else {}
        published = _published(attempts)
        out = {job.pk: found.get(job.pk, KeyError("no counts for this job")) for job in jobs}
        return {pk: dataclasses.replace(c, results_queued=queued.get(pk, 0), **published.get(pk, {}))
                if isinstance(c, JobCounts) else c for pk, c in out.items()}

    def _queued(self, attempts: dict[int, int]) -> dict[int, int]:
        """Results queued in the current attempt and not stored, within result_backlog_grace (older ones are
        taken for lost - a killed Celery worker, a flushed broker - so they cannot hold a dead job open)."""
        since = time.time() - runtime.config().result_backlog_grace
        rows = (ResultRecord.objects.filter(job_id__in=list(attempts), stored=False, queued_at__gte=since)
                .values("job_id", "attempt").annotate(n=Count("id")))
        return {r["job_id"]: r["n"] for r in rows if attempts.get(r["job_id"]) == r["attempt"]}

    def save(self, records: dict[int, plan.Record], running: list[int]) -> None:
        if connection.vendor == "postgresql":
            return _save_postgres(records)
        SweepRecord.objects.bulk_create([SweepRecord(job_id=j, data=r.to_dict()) for j, r in records.items()],
                                        batch_size=STORE_BATCH, update_conflicts=True, unique_fields=["job_id"],
                                        update_fields=["data", "updated_at"])
        SweepRecord.objects.exclude(job_id__in=running).delete()

    def fail(self, action: plan.Action) -> bool:
        b = self.binding
        reason = action.assessment.reason + details.dead_letters(b, action) + details.lost_images(b, action)
        with transaction.atomic():
            job = b.model.objects.select_for_update().get(pk=action.job_id)
            if job.status not in b.running_states or b.attempt(job) != action.attempt:
                return False  # finished, cancelled or restarted since the look
            if not_published_yet(job, action.assessment.condition, b):
                return False
            b.fail(job, reason)
        log.warning("job %s failed by the reaper: %s", action.job_id, reason)
        return True

    def complete(self, action: plan.Action) -> bool:
        """A job whose every task has a result but that was left running: the binding's optional
        `complete(job)` ends it; a binding without one gets a warning on the job's log, once per pass."""
        b = self.binding
        with transaction.atomic():
            job = b.model.objects.select_for_update().get(pk=action.job_id)
            if job.status not in b.running_states or b.attempt(job) != action.attempt:
                return False  # it ended by itself, or was restarted since the look
            complete = getattr(b, "complete", None)
            if complete is None:
                b.log(job, f"{action.assessment.reason} but the job is still {job.status}", level="WARNING")
                return False
            complete(job)
        log.warning("job %s completed by the reaper: %s", action.job_id, action.assessment.reason)
        return True

    def rerun(self, action: plan.Action) -> bool:
        """Enqueue the held-up attempt's run again through the binding's optional `rerun(job)`; a host without
        one gets its job failed with the reason. Publishing twice is harmless (start.superseded, Nats-Msg-Id)."""
        b = self.binding
        with transaction.atomic():
            job = self._locked_unpublished(action)
            if job is None:
                return False
            rerun = getattr(b, "rerun", None)
            if rerun is None:
                b.fail(job, f"{action.reason}; the host cannot enqueue it again (no JobBinding.rerun)")
            else:
                b.log(job, f"{action.reason}; its run is enqueued again", level="WARNING")
                rerun(job)
        log.warning("job %s: %s", action.job_id, action.reason)
        return True

    def fail_start(self, action: plan.Action) -> bool:
        with transaction.atomic():
            job = self._locked_unpublished(action)
            if job is None:
                return False
            self.binding.fail(job, action.reason)
        log.warning("job %s failed by the sweep: %s", action.job_id, action.reason)
        return True

    def end_cancel(self, action: plan.Action) -> bool:
        """End a stuck cancel through the binding's optional `revoke(job, reason)`, else through `fail`."""
        b = self.binding
        with transaction.atomic():
            job = self._locked(action, stopping_states(b))
            if job is None:
                return False
            getattr(b, "revoke", b.fail)(job, action.reason)
        log.warning("job %s ended by the sweep: %s", action.job_id, action.reason)
        return True

    def _locked_unpublished(self, action: plan.Action):
        """The job under its row lock if its Start is still held up: PENDING, or a RETRY whose publish is not
        recorded yet, in the attempt the sweep looked at."""
        b = self.binding
        job = self._locked(action, list(b.startable_states))
        if job is None or job.status in unstarted_states(b):
            return job
        return job if _unpublished(b, [job]) else None

    def _locked(self, action: plan.Action, states: list[str]):
        """The job under its row lock if it is still in `states` and in the attempt the sweep looked at."""
        job = self.binding.model.objects.select_for_update().get(pk=action.job_id)
        return job if job.status in states and self.binding.attempt(job) == action.attempt else None

    def warn(self, action: plan.Action) -> None:
        job = self.binding.model.objects.get(pk=action.job_id)
        self.binding.log(job, action.assessment.reason, level="WARNING")

    def retry_cleanups(self) -> int:
        return retry_pending()


def _save_postgres(records: dict[int, plan.Record]) -> None:
    """OrmStore.save on PostgreSQL: the records as one JSON document per STORE_BATCH jobs (a Django bulk upsert
    quotes every record as an array element, which cost more than the rest of a pass), and the records of jobs no
    longer looked at deleted: those not written in this transaction."""
    table, quote = SweepRecord._meta.db_table, connection.ops.quote_name
    upsert = (f"INSERT INTO {quote(table)} (job_id, data, updated_at) SELECT key::bigint, value, now() "
              "FROM jsonb_each(%s::jsonb) ON CONFLICT (job_id) DO UPDATE SET data = EXCLUDED.data, "
              "updated_at = EXCLUDED.updated_at")
    items = [(str(job_id), record.to_dict()) for job_id, record in records.items()]
    with transaction.atomic(), connection.cursor() as cursor:
        for at in range(0, len(items), STORE_BATCH):
            cursor.execute(upsert, [json.dumps(dict(items[at:at + STORE_BATCH]))])
        cursor.execute(f"DELETE FROM {quote(table)} WHERE updated_at < now()")  # now(): this transaction's start


def published_tasks(job_id: int, attempt: int) -> int | None:
    """How many tasks the attempt stored in NATS (AttemptRecord), None until its publish finished."""
    return AttemptRecord.objects.filter(job_id=job_id, attempt=attempt).values_list("published", flat=True).first()


def _published(attempts: dict[int, int]) -> dict[int, dict]:
    """What each job's current attempt published, when the publish finished."""
    rows = AttemptRecord.objects.filter(job_id__in=list(attempts), published__isnull=False).values(
        "job_id", "attempt", "published", "published_at", "published_server")
    return {r["job_id"]: {k: r[k] for k in ("published", "published_at", "published_server")}
            for r in rows if attempts.get(r["job_id"]) == r["attempt"]}


def not_published_yet(job, condition: Condition, binding) -> bool:
    """A job still in a startable state (RETRY) may have its progress state set up but no queue yet: its run
    creates the stream and sets STARTED only after the publish (under this row lock). A missing queue
    then is one not created yet, not a lost one."""
    return condition in (Condition.STREAM_LOST, Condition.CONSUMER_LOST) and job.status in binding.startable_states


def unstarted_states(binding) -> list[str]:
    """A job in one of these waits for its run to publish (PENDING)."""
    return [s for s in binding.startable_states if s not in binding.running_states]


def startable_running_states(binding) -> list[str]:
    """A job in one of these runs, or waits for its run to publish (RETRY): the publish record tells."""
    return [s for s in binding.startable_states if s in binding.running_states]


def _unpublished(binding, jobs: list) -> set[int]:
    """The jobs whose current attempt began (AttemptRecord) and has not recorded its publish."""
    if not jobs:
        return set()
    attempts = {job.pk: binding.attempt(job) for job in jobs}
    rows = AttemptRecord.objects.filter(job_id__in=list(attempts), published__isnull=True).values_list("job_id", "attempt")
    return {job_id for job_id, attempt in rows if attempts.get(job_id) == attempt}


def stopping_states(binding) -> list[str]:
    """A job in one of these waits for its cancel to end (CANCELING)."""
    return [s for s in binding.busy_states if s not in binding.startable_states and s not in binding.running_states]


def _bulky_fields(model) -> list[str]:
    """JSON and text columns (a job's progress, its logs): the sweep reads them only for the few jobs whose
    binding asks (deferred fields load on access), not for every running job of every pass."""
    return [f.name for f in model._meta.concrete_fields
            if not f.primary_key and f.get_internal_type() in ("JSONField", "TextField")]


def _or_error(fn, arg):
    try:
        return fn(arg)
    except Exception as exc:
        return exc
