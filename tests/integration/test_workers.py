"""Simulated workers against the real sandbox; responses checked against the real worker's strict models."""

import asyncio

import httpx
import pytest

from harness.workers import SimWorker
from harness.workers.process import WorkerProcess
from harness.workers.protocol import JobList, ResultResponse, TaskList

pytestmark = pytest.mark.integration


def process_stage(job: dict) -> dict:
    return {p["key"]: p["value"] for p in job["progress"]["stages"][1]["params"]}


def test_healthy_workers_finish_a_job(sandbox, worker):
    job = sandbox.client.create_job(images=60, start=True)
    sandbox.client.wait_for_status(job["id"], "STARTED", timeout=30)
    summary = worker("healthy", count=3, job_ids=[job["id"]])
    # a task can be handed out again if its result is still queued after ack_wait; it is counted once
    assert summary.reserved >= 60 and summary.statuses["queued"] == summary.reserved
    done = sandbox.client.wait_for_status(job["id"], "SUCCESS", timeout=30)
    assert process_stage(done) == {"processed": 60, "remaining": 0, "failed": 0}


def test_poison_results_count_as_failed(sandbox, worker):
    job = sandbox.client.create_job(images=8, start=True)
    sandbox.client.wait_for_status(job["id"], "STARTED", timeout=30)
    worker("poison", job_ids=[job["id"]])
    done = sandbox.client.wait_for_status(job["id"], "SUCCESS", timeout=30)
    assert process_stage(done)["failed"] == 8


def test_duplicate_posts_are_counted_once(sandbox, worker):
    job = sandbox.client.create_job(images=10, start=True)
    sandbox.client.wait_for_status(job["id"], "STARTED", timeout=30)
    summary = worker("duplicate", job_ids=[job["id"]])
    assert summary.posted == 20
    done = sandbox.client.wait_for_status(job["id"], "SUCCESS", timeout=30)
    assert done["progress"]["stages"][2]["params"][2]["value"] == 10  # captures


def test_worker_sigkilled_mid_batch_its_tasks_are_redelivered(sandbox, worker):
    job = sandbox.client.create_job(images=12, start=True)
    sandbox.client.wait_for_status(job["id"], "STARTED", timeout=30)
    victim = WorkerProcess(sandbox.api_url, sandbox.token, kind="slow",
                           args=["--job", str(job["id"]), "--hold", "60", "--batch-size", "5"])
    with victim:
        assert victim.wait_for_reservation()["tasks"] == 5
        victim.kill()
    summary = worker("healthy", job_ids=[job["id"]], idle_rounds=40)  # waits out ack_wait for the 5
    assert summary.reserved >= 12  # more only if a slow round trip outlasted ack_wait: redelivered, counted once
    done = sandbox.client.wait_for_status(job["id"], "SUCCESS", timeout=30)
    assert process_stage(done) == {"processed": 12, "remaining": 0, "failed": 0}


def test_responses_satisfy_the_real_workers_strict_models(sandbox):
    job = sandbox.client.create_job(images=2, start=True)
    sandbox.client.wait_for_status(job["id"], "STARTED", timeout=30)
    with httpx.Client(base_url=sandbox.api_url, headers={"Authorization": f"Token {sandbox.token}"}) as api:
        listed = JobList.model_validate_json(api.get(
            "/jobs?pipeline__slug__in=moth-detector&ids_only=1&incomplete_only=1&dispatch_mode=async_api").content)
        assert listed.results
        tasks = TaskList.model_validate_json(api.post(f"/jobs/{job['id']}/tasks/", json={"batch_size": 2}).content)
        assert len(tasks.tasks) == 2
        sim = SimWorker(sandbox.api_url, sandbox.token)
        from harness.workers.protocol import success_result

        body = {"results": [{"reply_subject": t.reply_subject, "result": success_result(t.model_dump())}
                            for t in tasks.tasks]}
        answer = ResultResponse.model_validate_json(api.post(f"/jobs/{job['id']}/result/", json=body).content)
        assert answer.results_queued == 2 and all(t.status == "queued" for t in answer.tasks)
    del sim
    asyncio.run(asyncio.sleep(0))
    sandbox.client.wait_for_status(job["id"], "SUCCESS", timeout=30)
