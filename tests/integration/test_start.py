"""Idempotent Start against the real stack, driven through this process's ORM and NATS bridge."""

import pytest

pytestmark = pytest.mark.integration


@pytest.mark.stack(fixes="on")
def test_an_attempt_published_after_its_job_ended_leaves_no_queue(sandbox_db):
    """The job ends while its Start still waits in the Celery queue (the soak found it: queued results of
    the previous attempt failed the job first). Its cleanup ran before the stream existed; the publish
    that comes after must delete what it created."""
    from fixes.django import runtime
    from fixes.django.start import begin_attempt, publish_attempt
    from harness.factories import JobFactory

    job = begin_attempt(JobFactory(images=3).pk)  # PENDING in a new attempt; this test plays run_job
    runtime.binding().fail(job, "ended while its Start was queued")  # cleanup: nothing to delete yet
    tasks = [(runtime.layout().msg_id(job.pk, job.attempt, i), b"{}") for i in range(3)]

    _, stored = publish_attempt(job.pk, job.attempt, tasks)

    assert stored == 3
    snapshot = runtime.bridge().call(lambda q: q.snapshot(job.pk))
    assert not snapshot.stream_exists and not snapshot.consumer_exists


@pytest.mark.stack(fixes="on")
def test_a_running_attempt_keeps_its_queue(sandbox_db):
    from fixes.django import runtime
    from fixes.django.start import begin_attempt, publish_attempt
    from harness.factories import JobFactory

    job = begin_attempt(JobFactory(images=2).pk)
    tasks = [(runtime.layout().msg_id(job.pk, job.attempt, i), b"{}") for i in range(2)]
    publish_attempt(job.pk, job.attempt, tasks)
    snapshot = runtime.bridge().call(lambda q: q.snapshot(job.pk))
    assert snapshot.stream_exists and snapshot.messages == 2
    runtime.bridge().call(lambda q: q.delete(job.pk))
