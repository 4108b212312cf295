"""The batched sweep pass against the real stack, driven through this process's ORM and NATS bridge.

The stack runs no sweep of its own (FIX_SWEEP=0); the tests switch it on in this process only.
"""

import dataclasses

import pytest

from tests.integration.wire import started_job

pytestmark = pytest.mark.integration

NO_BEAT_SWEEP = {"fixes": "on", "FIX_SWEEP": "0"}


@pytest.fixture
def sweep_on(sandbox_db):
    from django.conf import settings

    settings.FIXES = dataclasses.replace(settings.FIXES, sweep=True)  # restored when sandbox_db ends
    return sandbox_db


def _fail_snapshot_of(monkeypatch, job_id: int, error: Exception | None = None, unreachable: bool = False,
                      server_answers: bool = False):
    """The job's look raises `error`, or finds it unreachable (and the server's own JetStream info then answers
    or not, as `server_answers` says)."""
    from fixes.jetstream import JobQueue
    from fixes.model import QueueSnapshot

    real = JobQueue.snapshot

    async def answers(self):
        return server_answers

    monkeypatch.setattr(JobQueue, "server_answers", answers)

    async def snapshot(self, wanted: int, attempt=None, listed=None):
        if wanted == job_id:
            if unreachable:
                return QueueSnapshot(taken_at=0.0, job_id=wanted, reachable=False)
            raise error
        return await real(self, wanted, attempt, listed)

    monkeypatch.setattr(JobQueue, "snapshot", snapshot)


@pytest.mark.stack(**NO_BEAT_SWEEP)
def test_one_job_whose_look_raises_does_not_stop_the_others(sweep_on, monkeypatch):
    from fixes.django import reaper, runtime
    from fixes.django.models import SweepRecord as Observation

    jobs = [started_job(sweep_on, images=1) for _ in range(4)]
    broken_snapshot, broken_counts = jobs[1], jobs[2]
    _fail_snapshot_of(monkeypatch, broken_snapshot, error=RuntimeError("snapshot broke"))
    binding, real_many = runtime.binding(), runtime.binding().counts_many

    def counts_many(many):
        found = real_many(many)
        if broken_counts in found:
            found[broken_counts] = ValueError("counts broke")
        return found

    monkeypatch.setattr(binding, "counts_many", counts_many)
    Observation.objects.filter(job_id__in=jobs).delete()

    result = reaper.sweep()

    assert not result.unreachable and not set(result.failed) & set(jobs)
    assert {broken_snapshot, broken_counts} <= set(result.skipped)
    assert not {jobs[0], jobs[3]} & set(result.skipped)
    stored = set(Observation.objects.filter(job_id__in=jobs).values_list("job_id", flat=True))
    assert stored == {jobs[0], jobs[3]}
    assert Observation.objects.get(job_id=jobs[3]).data["counts"]["expected"] == 1


@pytest.mark.stack(**NO_BEAT_SWEEP)
def test_listed_streams_give_the_same_looks_as_one_job_at_a_time(sweep_on, monkeypatch):
    """snapshots() from STREAM.LIST pages (many jobs) against snapshot() of each job alone, also for a job whose
    consumer or stream is gone: only the clocks may differ."""
    from fixes.django import runtime
    from fixes.jetstream import inspect

    jobs = [started_job(sweep_on, images=2) for _ in range(3)]
    no_consumer, no_stream = jobs[1], jobs[2]
    layout, model = runtime.layout(), runtime.binding().model
    wanted = {job_id: model.objects.get(pk=job_id).attempt for job_id in jobs}

    async def break_two(q):
        await q._js.delete_consumer(layout.stream(no_consumer), layout.consumer(no_consumer, wanted[no_consumer]))
        await q._js.delete_stream(layout.stream(no_stream))
    runtime.bridge().call(break_two)
    clocks = ("taken_at", "server_time", "last_active")

    def look(at_least: int) -> dict:
        monkeypatch.setattr(inspect, "LIST_AT_LEAST", at_least)
        found = runtime.bridge().call(lambda q: q.snapshots(wanted))
        return {job_id: {k: v for k, v in snap.to_dict().items() if k not in clocks} for job_id, snap in found.items()}

    listed = runtime.bridge().call(lambda q: q.stream_states(wanted))
    assert set(listed) == {jobs[0], no_consumer} and listed[jobs[0]]["state"]["messages"] == 2
    one_by_one, from_pages = look(10**6), look(1)
    assert from_pages == one_by_one
    assert from_pages[jobs[0]]["num_pending"] == 2 and from_pages[jobs[0]]["messages"] == 2
    assert from_pages[no_consumer]["stream_exists"] and not from_pages[no_consumer]["consumer_exists"]
    assert not from_pages[no_stream]["stream_exists"]


@pytest.mark.stack(**NO_BEAT_SWEEP)
def test_counts_fall_back_to_one_by_one_without_counts_many(sweep_on, monkeypatch):
    from fixes.django import reaper, runtime
    from fixes.django.models import SweepRecord as Observation

    job_id = started_job(sweep_on, images=2)
    cls = type(runtime.binding())
    monkeypatch.delattr(cls, "counts_many")
    assert not hasattr(runtime.binding(), "counts_many")

    result = reaper.sweep()

    assert job_id not in result.skipped and job_id not in result.failed
    data = Observation.objects.get(job_id=job_id).data
    counts = {k: data["counts"][k] for k in ("expected", "processed", "failed", "results_queued")}
    assert counts == {"expected": 2, "processed": 0, "failed": 0, "results_queued": 0}
    assert data["snapshot"]["consumer_exists"] and data["snapshot"]["num_pending"] == 2


@pytest.mark.stack(**NO_BEAT_SWEEP)
def test_nats_not_answering_for_one_job_marks_an_outage_and_judges_nobody_after_it(sweep_on, monkeypatch):
    from fixes.django import reaper
    from fixes.django.models import SweepRecord as Observation

    jobs = [started_job(sweep_on, images=1) for _ in range(2)]
    reaper.sweep()  # a normal pass stores an observation of each
    _fail_snapshot_of(monkeypatch, jobs[0], unreachable=True)

    result = reaper.sweep()

    assert result.unreachable and not set(result.failed) & set(jobs)
    for job_id in jobs:
        data = Observation.objects.get(job_id=job_id).data
        assert data["outage"] is True and "snapshot" in data  # the earlier look is kept, marked
    monkeypatch.undo()
    reaper.sweep()  # NATS answers again: the watch clock restarts, the mark is gone
    for job_id in jobs:
        data = Observation.objects.get(job_id=job_id).data
        assert data["outage"] is False and data["watch_since"] is not None


@pytest.mark.stack(**NO_BEAT_SWEEP)
def test_one_stream_without_an_answer_while_the_server_answers_is_passed_over(sweep_on, monkeypatch):
    """A stream without a leader (its replicas lost quorum) while JetStream itself answers: that job's look is
    marked and timed (unavailable_since), the pass is not an outage and the job after it is judged."""
    from fixes.django import reaper
    from fixes.django.models import SweepRecord as Observation

    jobs = [started_job(sweep_on, images=1) for _ in range(2)]
    reaper.sweep()
    _fail_snapshot_of(monkeypatch, jobs[0], unreachable=True, server_answers=True)

    result = reaper.sweep()

    assert not result.unreachable and not set(result.failed) & set(jobs)
    silent, judged = (Observation.objects.get(job_id=job_id).data for job_id in jobs)
    assert silent["outage"] is True and silent["unavailable_since"] is not None
    assert judged["outage"] is False and "unavailable_since" not in judged


@pytest.mark.stack(**NO_BEAT_SWEEP)
def test_a_finished_job_left_started_is_completed_after_two_looks(sweep_on):
    """A job with no images has nothing to count: no result ever completes it. The sweep's FINISHED
    verdict does, through the binding's complete(), after two looks: the next pass's with confirm_delay 0, the
    confirming look of the same pass by default."""
    from django.conf import settings

    from fixes.django import reaper, runtime

    default = settings.FIXES
    next_pass = started_job(sweep_on, images=0)
    settings.FIXES = dataclasses.replace(default, confirm_delay=0)
    reaper.sweep()
    assert sweep_on.client.job(next_pass)["status"] == "STARTED"  # seen once: not yet
    settings.FIXES = default
    same_pass = started_job(sweep_on, images=0)  # never looked at before the pass below
    assert set(reaper.sweep().completed) == {next_pass, same_pass}

    for job_id in (next_pass, same_pass):
        job = sweep_on.client.job(job_id)
        assert job["status"] == "SUCCESS" and job["finished_at"]
        assert not runtime.bridge().call(lambda q, j=job_id: q.snapshot(j, 1)).stream_exists  # cleaned up


@pytest.mark.stack(**NO_BEAT_SWEEP)
def test_a_redis_restart_from_an_older_snapshot_does_not_undo_stored_results(sweep_on):
    """Redis restored from a dump taken before two results were stored counts them as unprocessed again;
    their tasks are acked, so NATS will never hand them out: the reaper would take them for dead. The
    stored rows are the truth."""
    import shutil
    import time

    from fixes.django import runtime
    from harness.sandbox.jobs.models import ImageResult, Job
    from tests.integration.wire import api_client, post, reserve, success

    job_id = started_job(sweep_on, images=3)
    redis = sweep_on.stack.redis
    with redis.client() as conn:
        conn.save()
    older = redis.tmpdir / "older.rdb"
    shutil.copy(redis.tmpdir / "dump.rdb", older)
    with api_client(sweep_on) as api:
        tasks = reserve(api, job_id, size=3)
        post(api, job_id, [success(t) for t in tasks[:2]])
    deadline = time.monotonic() + 30
    while ImageResult.objects.filter(job_id=job_id).count() < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    job = Job.objects.get(pk=job_id)
    assert runtime.binding().counts(job).processed == 2

    redis.kill()
    shutil.copy(older, redis.tmpdir / "dump.rdb")
    redis.start()

    counts = _counts_once_redis_answers(runtime.binding(), job)
    assert counts.expected == 3 and counts.processed == 2
    assert counts.unprocessed_image_ids == (str(tasks[2]["image_id"]),)


def _counts_once_redis_answers(binding, job, timeout: float = 10.0):
    import time

    import redis

    deadline = time.monotonic() + timeout
    while True:
        try:
            return binding.counts(job)
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.stack(**NO_BEAT_SWEEP)
def test_a_lost_start_is_run_again_and_a_stuck_cancel_is_ended(sweep_on):
    """Through the ORM and the sandbox binding: a Start whose run never came is enqueued again (the stack's
    Celery worker runs it: STARTED), a job left CANCELING is REVOKED a bound after the sweep first saw it."""
    from django.conf import settings

    from fixes.django import reaper, start
    from harness.factories import JobFactory
    from harness.sandbox.jobs.models import Job
    from harness.waiting import poll_until

    settings.FIXES = dataclasses.replace(settings.FIXES, start_timeout=0.5)
    canceling = started_job(sweep_on, images=1)
    Job.objects.filter(pk=canceling).update(status="CANCELING")  # the cancel's revoke raised
    lost = start.begin(JobFactory(images=2).pk, "PENDING").pk  # no run_job was ever enqueued

    first = reaper.sweep()
    assert not (first.rerun or first.ended)  # both within the bound
    poll_until(lambda: reaper.sweep().rerun == [lost], timeout=10, interval=0.2, what="the lost run enqueued again")

    assert poll_until(lambda: Job.objects.get(pk=lost).status == "STARTED", timeout=30, interval=0.2,
                      what="the run enqueued again has published")
    poll_until(lambda: reaper.sweep() and Job.objects.get(pk=canceling).status == "REVOKED", timeout=10,
               interval=0.2, what="the stuck cancel ended")
    assert any("CANCELING for" in line.message for line in Job.objects.get(pk=canceling).logs.all())


@pytest.mark.stack(**NO_BEAT_SWEEP)
def test_a_retry_whose_run_never_comes_is_run_again_not_left_running(sweep_on):
    """A RETRY is both startable and running: while its publish is not recorded the sweep times it from its
    Start like a PENDING one (before: judged as running, its missing queue read as "not created yet" forever)."""
    from django.conf import settings

    from fixes.django import reaper, start
    from fixes.django.store import OrmStore
    from harness.factories import JobFactory
    from harness.sandbox.jobs.models import Job
    from harness.waiting import poll_until

    settings.FIXES = dataclasses.replace(settings.FIXES, start_timeout=0.5)
    lost = start.begin(JobFactory(images=2).pk, "RETRY").pk  # no run_job was ever enqueued

    assert lost not in OrmStore().running()
    poll_until(lambda: reaper.sweep().rerun == [lost], timeout=10, interval=0.2, what="the lost run enqueued again")
    assert poll_until(lambda: Job.objects.get(pk=lost).status == "STARTED", timeout=30, interval=0.2,
                      what="the run enqueued again has published")
    assert lost in OrmStore().running()
