"""Bad worker input never loses good input, and a token only reaches its own projects' jobs (issue 12, §4-5)."""

import copy

import httpx
import pytest

from fixes.layout import parse_reply_subject
from harness.waiting import poll_until
from tests.integration.wire import api_client, post, reserve, started_job, success

pytestmark = pytest.mark.integration


@pytest.fixture
def api(sandbox):
    with api_client(sandbox) as client:
        yield client


def processed(sandbox, job_id: int) -> int:
    return sandbox.client.job(job_id)["progress"]["stages"][1]["params"][0]["value"]


def _set(result: dict, path: str, value) -> dict:
    """A copy of a worker result with one field (dotted path, list indexes as numbers) replaced."""
    result = copy.deepcopy(result)
    *parents, leaf = [int(k) if k.isdigit() else k for k in path.split(".")]
    node = result
    for key in parents:
        node = node[key]
    node[leaf] = value
    return result


@pytest.mark.parametrize(("path", "value", "field"), [
    ("result.detections.0.classifications", 5, "results[1].result.detections[0].classifications must be a list"),
    ("result.detections", {"a": 1}, "results[1].result.detections must be a list"),
    ("result.detections.0", "box", "results[1].result.detections[0] must be an object"),
    ("result.detections.0.classifications.0", 7, "results[1].result.detections[0].classifications[0] must be"),
    ("result.detections.0.bbox.x1", "left", "results[1].result.detections[0].bbox.x1 must be a number"),
    ("reply_subject", "$JS.ACK." + "x" * 600, "results[1].reply_subject must be a non-empty string of at most"),
    ("result.source_images.0.id", None, "results[1].result.source_images[0].id must be a positive integer"),
    ("result.source_images.0.id", "-3", "results[1].result.source_images[0].id must be a positive integer"),
    ("result.source_images.0.id", "abc", "results[1].result.source_images[0].id must be a positive integer"),
    ("result.source_images.0.id", 2**70, "results[1].result.source_images[0].id must be a positive integer"),
])
def test_one_malformed_result_is_400_naming_the_field_and_the_good_one_is_not_lost(sandbox, api, path, value, field):
    job_id = started_job(sandbox, images=2)
    good, other = reserve(api, job_id, 2)
    response = api.post(f"/jobs/{job_id}/result/", json={"results": [success(good), _set(success(other), path, value)]})
    assert response.status_code == 400, response.text  # before: 200 "queued", then the batch's task raised
    assert field in response.json()["error"]
    post(api, job_id, [success(good)])  # the worker resends what was good: it is stored and counted
    poll_until(lambda: processed(sandbox, job_id) == 1, timeout=20, interval=0.2, what="the good result counted")


@pytest.mark.parametrize("image_id", [-1, "-1", "x", "1.5", ""])
def test_error_result_without_a_valid_image_id_is_refused_not_acked(sandbox, api, image_id):
    job_id = started_job(sandbox, images=1)
    [task] = reserve(api, job_id, 1)
    response = api.post(f"/jobs/{job_id}/result/",
                        json={"results": [{"reply_subject": task["reply_subject"],
                                           "result": {"error": "broken", "image_id": image_id}}]})
    assert response.status_code == 400, response.text  # before: queued, acked, never counted
    assert "results[0].result.image_id" in response.json()["error"]


def test_error_result_naming_no_image_is_counted_for_the_image_handed_out(sandbox, api):
    """The protocol allows `image_id: null` on an error result: the image is the one handed out under its reply
    subject. Before: queued, acked and never counted (the job then failed as "exhausted max_deliver")."""
    job_id = started_job(sandbox, images=1)
    [task] = reserve(api, job_id, 1)
    post(api, job_id, [{"reply_subject": task["reply_subject"], "result": {"error": "broken", "image_id": None}}])
    sandbox.client.wait_for_status(job_id, "SUCCESS", timeout=30)
    assert sandbox.client.job(job_id)["progress"]["stages"][1]["params"][2]["value"] == 1  # failed: 1


def test_error_result_naming_no_image_and_no_handout_is_refused(sandbox, api):
    job_id = started_job(sandbox, images=1)
    [task] = reserve(api, job_id, 1)
    forged = _with_seq(task["reply_subject"], parse_reply_subject(task["reply_subject"]).stream_seq + 7)
    response = api.post(f"/jobs/{job_id}/result/", json={"results": [
        {"reply_subject": forged, "result": {"error": "broken", "image_id": None}}]})
    assert response.status_code == 400, response.text
    assert "results[0].result.image_id is null" in response.json()["error"]


def test_result_for_another_jobs_image_is_refused(sandbox, api):
    job_id, other_id = started_job(sandbox, images=1), started_job(sandbox, images=1)
    [task], [foreign] = reserve(api, job_id, 1), reserve(api, other_id, 1)
    result = success({**task, "image_id": foreign["image_id"]})
    response = api.post(f"/jobs/{job_id}/result/", json={"results": [result]})
    assert response.status_code == 400, response.text
    assert f"results[0].result.source_images[0].id names image {foreign['image_id']}" in response.json()["error"]
    post(api, job_id, [success(task)])
    post(api, other_id, [success(foreign)])
    for job in (job_id, other_id):
        sandbox.client.wait_for_status(job, "SUCCESS", timeout=30)


@pytest.mark.parametrize("tail", [" x", "\r\nPUB $JS.API.STREAM.DELETE.job_1 0", "\tx", "\u00e9", ".9.9", "." + "9" * 30])
def test_crafted_reply_subject_is_refused_before_anything_is_queued(sandbox, api, tail):
    job_id = started_job(sandbox, images=1)
    [task] = reserve(api, job_id, 1)
    result = {**success(task), "reply_subject": task["reply_subject"] + tail}
    response = api.post(f"/jobs/{job_id}/result/", json={"results": [result]})
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        assert response.json()["results_queued"] == 0
        assert response.json()["tasks"][0]["status"].startswith("rejected_")
    post(api, job_id, [success(task)])
    sandbox.client.wait_for_status(job_id, "SUCCESS", timeout=30)


def test_too_many_results_in_one_post_is_413(sandbox, api):
    job_id = started_job(sandbox, images=1)
    [task] = reserve(api, job_id, 1)
    response = api.post(f"/jobs/{job_id}/result/", json={"results": [success(task)] * 1001})
    assert response.status_code == 413, response.text
    assert "at most 1000 per request" in response.json()["error"]


def test_oversized_body_is_413(sandbox, api):
    job_id = started_job(sandbox, images=1)
    [task] = reserve(api, job_id, 1)
    big = success(task)
    big["result"]["config"] = {"padding": "x" * (17 * 1024 * 1024)}
    response = api.post(f"/jobs/{job_id}/result/", json={"results": [big]})
    assert response.status_code == 413, response.text
    assert "larger than" in response.json()["error"]


def test_the_store_isolates_a_bad_result_and_stores_the_rest(sandbox_db, api):
    """Belt and braces: a bad result that reached the task queue anyway (the view checks every field) is
    logged and left unacked; the rest of its batch is stored, counted and acked."""
    from harness.sandbox.jobs.models import ImageResult
    from harness.sandbox.jobs.tasks import _process_batch

    job_id = started_job(sandbox_db, images=2)
    good, bad = reserve(api, job_id, 2)
    broken = _set(success(bad), "result.detections.0.classifications", 5)
    acks = _process_batch(job_id, [(good["reply_subject"], success(good)["result"]),
                                   (bad["reply_subject"], broken["result"])])
    assert acks == [good["reply_subject"]]  # before: TypeError, nothing stored
    assert list(ImageResult.objects.filter(job_id=job_id).values_list("image_id", flat=True)) == [int(good["image_id"])]


# --- who may touch which job -----------------------------------------------------------------------------------

def test_a_token_of_another_project_cannot_touch_the_job(sandbox, api):
    outsider = sandbox.stack.outsider_token()  # first: it runs a management command, longer than ack_wait
    job_id = started_job(sandbox, images=2)
    [task] = reserve(api, job_id, 1)
    calls = [("GET", f"/jobs/{job_id}/", None), ("POST", f"/jobs/{job_id}/tasks/", {"batch_size": 1}),
             ("POST", f"/jobs/{job_id}/result/", {"results": [success(task)]}),
             ("POST", f"/jobs/{job_id}/tasks/in_progress/", {"reply_subjects": [task["reply_subject"]]}),
             ("POST", f"/jobs/{job_id}/cancel/", None), ("POST", f"/jobs/{job_id}/run/", None),
             ("POST", f"/jobs/{job_id}/retry/", None)]
    with httpx.Client(base_url=sandbox.api_url, timeout=30, headers={"Authorization": f"Token {outsider}"}) as other:
        for method, path, body in calls:
            response = other.request(method, path, **({"json": body} if body else {}))
            assert response.status_code == 403, (path, response.status_code, response.text)
            assert "not a member" in response.json()["error"]
        listed = other.get("/jobs/", params={"limit": 1000}).json()["results"]
        assert job_id not in {j["id"] for j in listed}
        own = other.post("/jobs/", json={"pipeline": "moth-detector", "images": 1})  # its own project's job
        assert own.status_code == 201, own.text
        assert other.get(f"/jobs/{own.json()['id']}/").status_code == 200
    assert sandbox.client.job(job_id)["status"] == "STARTED"
    post(api, job_id, [success(task), *[success(t) for t in reserve(api, job_id, 1)]])
    sandbox.client.wait_for_status(job_id, "SUCCESS", timeout=30)


# --- reply subjects bound to what was handed out --------------------------------------------------------------

def _with_seq(subject: str, seq: int, timestamp: int | None = None) -> str:
    """The reply subject of a delivery with another stream sequence (and timestamp): what a forger builds."""
    tokens = subject.split(".")
    at = 5 if len(tokens) == 9 else 7  # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>... (or the domain form)
    tokens[at] = str(seq)
    if timestamp is not None:
        tokens[at + 2] = str(timestamp)
    return ".".join(tokens)


def test_a_reply_subject_never_handed_out_is_refused_as_forged(sandbox, api):
    job_id = started_job(sandbox, images=3)
    [task] = reserve(api, job_id, 1)
    seq = parse_reply_subject(task["reply_subject"]).stream_seq
    unseen = _with_seq(task["reply_subject"], seq + 1, timestamp=4_000_000_000_000_000_000)
    answer = post(api, job_id, [{**success(task), "reply_subject": unseen}])
    assert answer["tasks"][0]["status"] == "rejected_forged"  # before: queued, and acked a task nobody had
    [other] = reserve(api, job_id, 1)
    swapped = {**success(task), "reply_subject": other["reply_subject"]}  # someone else's seq, for my image
    assert post(api, job_id, [swapped])["tasks"][0]["status"] == "rejected_forged"
    answer = post(api, job_id, [success(task), success(other), *[success(t) for t in reserve(api, job_id, 1)]])
    assert [t["status"] for t in answer["tasks"]] == ["queued"] * 3
    sandbox.client.wait_for_status(job_id, "SUCCESS", timeout=30)


@pytest.mark.parametrize("scoping", [pytest.param("off", marks=pytest.mark.stack(project_scoping="off")), "on"])
def test_unauthorized_rejected_tries_a_token_of_another_project(sandbox, scoping):
    """The run's probe asks with a token of another project too; with scoping off the checker fails."""
    from harness.checks.api import unauthorized_rejected
    from harness.history import History
    from scenarios.fuzz import probe_unauthorized

    history, outsider = History(), sandbox.stack.outsider_token()
    job_id = started_job(sandbox, images=1)
    probe_unauthorized(sandbox.api_url, history, job_id, other_project_token=outsider)
    verdict = unauthorized_rejected(history.ops, {})
    assert verdict.counts["other_project_tries"] == 4
    assert verdict.ok is (scoping == "on"), verdict.samples
