"""factory-boy factories write into the live sandbox's database; the API sees the rows at once."""

import pytest

from tests.integration.wire import api_client, drain

pytestmark = pytest.mark.integration


def test_job_factory_creates_a_job_the_sandbox_can_run(sandbox_db):
    from harness.factories import JobFactory
    from harness.sandbox.jobs.models import Job, JobState

    job = JobFactory(images=7, pipeline__slug="moth-detector")
    assert job.images.count() == 7 and job.status == JobState.CREATED
    sandbox_db.client.start(job.pk)
    sandbox_db.client.wait_for_status(job.pk, "STARTED", timeout=30)
    with api_client(sandbox_db) as api:
        assert drain(api, job.pk) == 7
    sandbox_db.client.wait_for_status(job.pk, "SUCCESS", timeout=30)
    job = Job.objects.get(pk=job.pk)
    assert job.stage_param("process", "processed") == 7
    assert job.results.count() == 7
    assert [log.message for log in job.logs.all()][-1] == "Completed: 7 images processed, 0 failed"


def test_orm_transition_fires_the_cleanup_hook(sandbox_db):
    """Saving REVOKED from any code path (here: this process's ORM) deletes the job's stream."""
    from harness.sandbox.jobs import actions

    job = sandbox_db.client.create_job(images=3, start=True)
    sandbox_db.client.wait_for_status(job["id"], "STARTED", timeout=30)
    actions.revoke(job["id"])
    queue = sandbox_db.client.job(job["id"], queue=True)["queue"]
    assert queue["stream_exists"] is False
