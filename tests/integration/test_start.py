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


@pytest.mark.stack(fixes="on")
def test_an_attempt_records_when_it_began_and_what_its_stream_held_after_the_publish(sandbox_db):
    """What the reaper compares the stream with (lost tasks): one row per attempt, reset by the next Start."""
    from fixes.django import runtime, start
    from fixes.django.models import AttemptRecord
    from fixes.django.reaper import OrmStore
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
