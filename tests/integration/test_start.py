"""Idempotent Start against the real stack, driven through this process's ORM and NATS bridge."""

import pytest

pytestmark = pytest.mark.integration


@pytest.mark.stack(fixes="on")
def test_an_attempt_published_after_its_job_ended_leaves_no_queue(sandbox_db):
    """The job ends while its Start still waits in the Celery queue (the soak found it: queued results of
    the previous attempt failed the job first). Its cleanup ran before the stream existed; the publish
    that comes after must delete what it created."""
    from fixes.django import runtime, start
    from harness.factories import JobFactory

    job = start.begin(JobFactory(images=3).pk, "PENDING")  # a new attempt; this test plays run_job
    runtime.binding().fail(job, "ended while its Start was queued")  # cleanup: nothing to delete yet

    stored = start.publish(job.pk, job.attempt, [(i, b"{}") for i in range(3)])

    assert stored == 3
    snapshot = runtime.bridge().call(lambda q: q.snapshot(job.pk, job.attempt))
    assert not snapshot.stream_exists and not snapshot.consumer_exists


@pytest.mark.stack(fixes="on")
def test_a_running_attempt_keeps_its_queue_and_a_rerun_publishes_nothing_again(sandbox_db):
    from fixes.django import runtime, start
    from harness.factories import JobFactory

    job = start.begin(JobFactory(images=2).pk, "PENDING")
    tasks = [(i, b"{}") for i in range(2)]
    assert start.publish(job.pk, job.attempt, tasks) == 2
    assert start.publish(job.pk, job.attempt, tasks) == 0  # the same Celery task run twice
    snapshot = runtime.bridge().call(lambda q: q.snapshot(job.pk, job.attempt))
    assert snapshot.stream_exists and snapshot.messages == 2
    assert runtime.layout().consumer(job.pk, job.attempt).endswith(f"-a{job.attempt}")
    runtime.bridge().call(lambda q: q.delete(job.pk))


@pytest.mark.stack(fixes="on")
def test_a_deferred_cleanup_never_deletes_a_later_attempts_queue(sandbox_db):
    from fixes.django import runtime, start
    from fixes.django.cleanup import cleanup_job
    from fixes.django.models import PendingCleanup
    from harness.factories import JobFactory

    job = start.begin(JobFactory(images=2).pk, "PENDING")
    PendingCleanup.objects.create(job_id=job.pk, attempt=job.attempt - 1, reason="recorded before this Start")
    start.publish(job.pk, job.attempt, [(i, b"{}") for i in range(2)])

    assert cleanup_job(job.pk, job.attempt - 1, "retried by the sweep") is False
    assert runtime.bridge().call(lambda q: q.snapshot(job.pk, job.attempt)).messages == 2
    assert not PendingCleanup.objects.filter(job_id=job.pk).exists()
    runtime.bridge().call(lambda q: q.delete(job.pk))


def _start_lands_during_the_delete(monkeypatch, job_id: int, outcome: str):
    """The first queue delete (the cleanup's) lets a Retry of the job run in another thread first: until
    that Retry has published its attempt, or is waiting for a row lock. Then the delete goes on, or times
    out. Returns the thread."""
    import asyncio
    import threading
    import time

    from django.db import connection

    from fixes.django import start
    from fixes.jetstream import JobQueue, QueueUnavailable

    real_delete, hooked = JobQueue.delete, []

    def retry():
        try:
            job = start.begin(job_id, "RETRY")
            start.publish(job_id, job.attempt, [(i, b"{}") for i in range(2)])
        finally:
            connection.close()

    thread = threading.Thread(target=retry, name="concurrent-retry")

    def until_retry_published_or_blocked():
        try:
            deadline = time.monotonic() + 20
            while thread.is_alive() and time.monotonic() < deadline:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                   "AND datname = current_database()")
                    if cursor.fetchone()[0]:
                        return
                time.sleep(0.02)
        finally:
            connection.close()

    async def delete(self, wanted: int):
        if wanted == job_id and not hooked:
            hooked.append(True)
            thread.start()
            await asyncio.to_thread(until_retry_published_or_blocked)
            if outcome == "times out":
                raise QueueUnavailable("NATS call took longer than 5.0s")
        return await real_delete(self, wanted)

    monkeypatch.setattr(JobQueue, "delete", delete)
    return thread


@pytest.mark.stack(fixes="on")
@pytest.mark.parametrize("outcome", ["deletes", "times out"])
def test_a_retry_landing_during_a_deferred_cleanup_keeps_its_queue(sandbox_db, monkeypatch, outcome):
    """The sweep read a pending cleanup of attempt 1, then a Retry began attempt 2 while the cleanup was
    deleting: the cleanup must neither delete attempt 2's queue and Redis state nor record a retry of
    attempt 1 after the Retry cleared the old ones."""
    from fixes.django import runtime, start
    from fixes.django.cleanup import retry_pending
    from fixes.django.models import PendingCleanup
    from harness.factories import JobFactory
    from harness.sandbox.jobs.models import Job

    job = start.begin(JobFactory(images=2).pk, "PENDING")
    start.publish(job.pk, job.attempt, [(i, b"{}") for i in range(2)])
    Job.objects.filter(pk=job.pk).update(status="FAILURE")  # ended; its cleanup was deferred (NATS was down)
    PendingCleanup.objects.create(job_id=job.pk, attempt=job.attempt, reason="FAILURE while NATS was down")
    thread = _start_lands_during_the_delete(monkeypatch, job.pk, outcome)

    retry_pending()
    thread.join(30)

    assert not thread.is_alive()
    job.refresh_from_db()
    assert job.attempt == 2 and job.status == "RETRY"
    assert runtime.bridge().call(lambda q: q.snapshot(job.pk, 2)).messages == 2
    assert not PendingCleanup.objects.filter(job_id=job.pk).exists()


@pytest.mark.stack(fixes="on")
def test_a_rerun_of_a_lost_run_stores_each_task_once(sandbox_db):
    """The sweep enqueues a lost run again; the lost one may have published part of its tasks (killed
    mid-publish), or may still publish later (it hung on NATS). Each task is stored once, and a run that
    comes after the job reached STARTED publishes nothing."""
    import threading

    from fixes.django import runtime, start
    from harness.factories import JobFactory

    job = start.begin(JobFactory(images=6).pk, "PENDING")
    tasks = [(i, b"{}") for i in range(6)]
    assert start.publish(job.pk, job.attempt, tasks[:2]) == 2  # the killed run got this far
    stored = []
    runs = [threading.Thread(target=lambda: stored.append(start.publish(job.pk, job.attempt, tasks)))
            for _ in range(2)]  # the rerun, and the lost run coming back at the same moment
    for run in runs:
        run.start()
    for run in runs:
        run.join(30)

    assert sum(stored) == 4
    assert runtime.bridge().call(lambda q: q.snapshot(job.pk, job.attempt)).messages == 6
    job.status = "STARTED"
    assert start.superseded(job, job.attempt)  # a third run after the job started: skipped
    runtime.bridge().call(lambda q: q.delete(job.pk))


@pytest.mark.stack(fixes="on")
def test_a_retry_polled_before_its_queue_exists_is_not_failed_as_lost(sandbox_db):
    """run_job sets up the progress state, then creates the stream: a worker polling the RETRY job in
    between finds no stream while the counts say every task is unprocessed. That is a queue not created
    yet, not a lost one."""
    from fixes.django import reaper, start
    from harness.factories import JobFactory
    from harness.sandbox.jobs import progress

    job = start.begin(JobFactory(images=3).pk, "RETRY")
    progress.initialise(job.pk, list(job.images.values_list("pk", flat=True)))  # this test plays run_job

    assert reaper.hand_out(job, batch=4, timeout=0.5) == []
    job.refresh_from_db()
    assert job.status == "RETRY"

    start.publish(job.pk, job.attempt, [(i, b"{}") for i in range(3)])
    assert len(reaper.hand_out(job, batch=4, timeout=2.0)) == 3  # the tasks are handed out once it exists


@pytest.mark.stack(fixes="on")
def test_a_start_takes_over_an_attempt_whose_run_published_nothing_within_start_timeout(sandbox_db):
    from fixes.django import runtime, start
    from fixes.django.models import AttemptRecord
    from harness.factories import JobFactory

    job = start.begin(JobFactory(images=2).pk, "PENDING")  # its run never comes
    with pytest.raises(start.StartRefused):
        start.begin(job.pk, "PENDING")  # PENDING is busy while the run may still come
    AttemptRecord.objects.filter(job_id=job.pk, attempt=1).update(
        began_at=AttemptRecord.objects.get(job_id=job.pk, attempt=1).began_at - runtime.config().start_timeout)

    again = start.begin(job.pk, "PENDING")

    assert again.attempt == 2 and again.status == "PENDING"
    assert AttemptRecord.objects.filter(job_id=job.pk, attempt=2).exists()
    assert any("attempt 1 published nothing within" in line.message for line in again.logs.all())
    with pytest.raises(start.StartRefused):
        start.begin(job.pk, "PENDING")  # attempt 2 is fresh


@pytest.mark.stack(fixes="on")
def test_an_attempt_records_when_it_began_and_what_its_stream_held_after_the_publish(sandbox_db):
    """What the reaper compares the stream with (lost tasks): one row per attempt, reset by the next Start."""
    from fixes.django import runtime, start
    from fixes.django.models import AttemptRecord
    from fixes.django.store import OrmStore
    from harness.factories import JobFactory

    job = start.begin(JobFactory(images=3).pk, "PENDING")
    began = AttemptRecord.objects.get(job_id=job.pk, attempt=job.attempt)
    assert began.began_at > 0 and began.published is None
    start.publish(job.pk, job.attempt, [(i, b"{}") for i in range(3)])
    start.publish(job.pk, job.attempt, [(i, b"{}") for i in range(3)])  # a re-run still records what is held
    done = AttemptRecord.objects.get(job_id=job.pk, attempt=job.attempt)
    assert done.published == 3 and done.published_at >= began.began_at
    assert done.published_server == runtime.bridge().call(lambda q: q.snapshot(job.pk, job.attempt)).server_id
    counts = OrmStore().counts_of([job])[job.pk]
    assert (counts.published, counts.published_server) == (3, done.published_server)
    runtime.bridge().call(lambda q: q.delete(job.pk))
