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
