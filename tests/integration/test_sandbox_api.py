"""The sandbox's worker API against a real stack: round trip, auth, bad input, outages."""

import httpx
import pytest

from harness.waiting import poll_until
from tests.integration.wire import api_client, drain, post, reserve, started_job, success

pytestmark = pytest.mark.integration


@pytest.fixture
def api(sandbox):
    with api_client(sandbox) as client:
        yield client


def test_round_trip_reaches_success_with_exact_progress(sandbox, api):
    job_id = started_job(sandbox, images=40)
    assert drain(api, job_id) == 40
    job = sandbox.client.wait_for_status(job_id, "SUCCESS", timeout=30)
    process = {p["key"]: p["value"] for p in job["progress"]["stages"][1]["params"]}
    results = {p["key"]: p["value"] for p in job["progress"]["stages"][2]["params"]}
    assert process == {"processed": 40, "remaining": 0, "failed": 0}
    assert results == {"detections": 40, "classifications": 40, "captures": 40}
    assert job["finished_at"] is not None
    assert sandbox.client.job(job_id, queue=True)["queue"]["stream_exists"] is False  # cleaned on completion


def test_worker_list_call_exactly_as_sent_on_the_wire(sandbox, api):
    job_id = started_job(sandbox, images=1)
    response = api.get("/jobs?pipeline__slug__in=moth-detector%2Cother&ids_only=1&incomplete_only=1"
                       "&dispatch_mode=async_api&limit=1000")
    assert response.status_code == 200
    assert {"id": job_id, "pipeline_slug": "moth-detector"} in response.json()["results"]
    assert all(isinstance(r["pipeline_slug"], str) for r in response.json()["results"])


def test_result_posted_twice_is_counted_once(sandbox, api):
    job_id = started_job(sandbox, images=3)
    tasks = reserve(api, job_id, 3)
    first = [success(tasks[0])]
    post(api, job_id, first)
    post(api, job_id, first)
    post(api, job_id, [success(t) for t in tasks[1:]])
    job = sandbox.client.wait_for_status(job_id, "SUCCESS", timeout=30)
    assert job["progress"]["stages"][2]["params"][2]["value"] == 3  # captures


def test_error_results_count_as_failed_and_the_job_completes(sandbox, api):
    job_id = started_job(sandbox, images=4)
    tasks = reserve(api, job_id, 4)
    post(api, job_id, [{"reply_subject": t["reply_subject"], "result": {"error": "bad image", "image_id": t["image_id"]}}
                       for t in tasks])
    job = sandbox.client.wait_for_status(job_id, "SUCCESS", timeout=30)
    assert {p["key"]: p["value"] for p in job["progress"]["stages"][1]["params"]}["failed"] == 4


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Token nope"}, {"Authorization": "Bearer x"}])
def test_missing_or_invalid_token_is_401(sandbox, headers):
    with httpx.Client(base_url=sandbox.api_url, headers=headers) as anonymous:
        assert anonymous.get("/jobs").status_code == 401
        response = anonymous.post("/jobs/1/tasks/", json={"batch_size": 1})
        assert response.status_code == 401
        assert "error" in response.json()


def test_api_key_scheme_is_accepted_like_token(sandbox):
    response = httpx.get(f"{sandbox.api_url}/jobs/", headers={"Authorization": f"Api-Key {sandbox.token}"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("body", [None, [], {}, {"batch_size": 0}, {"batch_size": "4"}, {"batch_size": True},
                                  {"batch_size": 10_000}])
def test_bad_batch_size_is_400_with_a_message(sandbox, api, body):
    job_id = started_job(sandbox, images=1)
    response = api.post(f"/jobs/{job_id}/tasks/", json=body)
    assert response.status_code == 400
    assert "batch_size" in response.json()["error"] or "object" in response.json()["error"]


@pytest.mark.parametrize("body", [{}, {"results": []}, {"results": [{}]}, {"results": [{"reply_subject": "x"}]},
                                  {"results": [{"reply_subject": "x", "result": {"pipeline": "p"}}]},
                                  {"results": [{"reply_subject": 5, "result": {"error": "e"}}]}])
def test_malformed_results_are_400_and_nothing_is_counted(sandbox, api, body):
    job_id = started_job(sandbox, images=1)
    response = api.post(f"/jobs/{job_id}/result/", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]
    assert sandbox.client.job(job_id)["progress"]["stages"][1]["params"][0]["value"] == 0


def test_invalid_json_is_400(sandbox, api):
    job_id = started_job(sandbox, images=1)
    response = api.post(f"/jobs/{job_id}/result/", content=b"{not json",
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]


@pytest.mark.parametrize("params", [{"limit": "-1"}, {"offset": "-5"}, {"limit": "99999999999999999999"},
                                    {"limit": "x"}, {"pipeline__slug__in": "a\x00b"}, {"dispatch_mode": "\x00"}])
def test_bad_list_parameters_are_400(sandbox, api, params):
    response = api.get("/jobs/", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]


def test_nul_in_a_result_is_400_not_a_lost_result(sandbox, api):
    job_id = started_job(sandbox, images=1)
    [task] = reserve(api, job_id, 1)
    result = success(task)
    result["result"]["detections"][0]["classifications"][0]["classification"] = "moth\x00"
    response = api.post(f"/jobs/{job_id}/result/", json={"results": [result]})
    assert response.status_code == 400, response.text
    assert "NUL" in response.json()["error"]


def test_unknown_job_is_404(sandbox, api):
    assert api.get("/jobs/99999999999999999999/").status_code == 404
    assert api.post("/jobs/99999999999/tasks/", json={"batch_size": 1}).status_code == 404
    assert api.post("/jobs/999999/tasks/", json={"batch_size": 1}).status_code == 404
    assert api.post("/jobs/999999/result/", json={"results": [success(
        {"reply_subject": "r", "image_id": "1", "image_url": "u"})]}).status_code == 404


def test_job_not_started_hands_out_nothing(sandbox, api):
    job = sandbox.client.create_job(images=2)
    assert reserve(api, job["id"]) == []


def test_nats_down_is_503_with_retry_after_then_work_resumes(sandbox, api):
    job_id = started_job(sandbox, images=4)
    nats = sandbox.stack.nats
    nats.kill()
    try:
        response = api.post(f"/jobs/{job_id}/tasks/", json={"batch_size": 4})
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        assert "unavailable" in response.json()["error"]
    finally:
        nats.start()  # store kept: the job's stream survives a crash

    def reserved():
        response = api.post(f"/jobs/{job_id}/tasks/", json={"batch_size": 4})
        return response.status_code == 200 and response.json()["tasks"]

    tasks = poll_until(reserved, timeout=15, interval=0.2, what="tasks handed out after NATS came back")
    assert len(tasks) == 4
    post(api, job_id, [success(t) for t in tasks])
    sandbox.client.wait_for_status(job_id, "SUCCESS", timeout=30)
