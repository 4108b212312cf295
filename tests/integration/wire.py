"""Raw worker-protocol calls for tests that need to act step by step (reserve now, post later)."""

import httpx


def success(task: dict) -> dict:
    return {"reply_subject": task["reply_subject"],
            "result": {"pipeline": "moth-detector", "algorithms": {}, "total_time": 0.01, "config": {},
                       "source_images": [{"id": task["image_id"], "url": task["image_url"]}],
                       "detections": [{"bbox": {"x1": 0, "y1": 0, "x2": 1, "y2": 1},
                                       "classifications": [{"classification": "moth"}]}]}}


def reserve(api: httpx.Client, job_id: int, size: int = 16) -> list[dict]:
    response = api.post(f"/jobs/{job_id}/tasks/", json={"batch_size": size})
    assert response.status_code == 200, response.text
    return response.json()["tasks"]


def post(api: httpx.Client, job_id: int, results: list[dict]) -> dict:
    response = api.post(f"/jobs/{job_id}/result/", json={"results": results})
    assert response.status_code == 200, response.text
    return response.json()


def drain(api: httpx.Client, job_id: int, size: int = 16) -> int:
    handed = 0
    while tasks := reserve(api, job_id, size):
        post(api, job_id, [success(t) for t in tasks])
        handed += len(tasks)
    return handed


def started_job(sandbox, images: int) -> int:
    job = sandbox.client.create_job(images=images, start=True)
    sandbox.client.wait_for_status(job["id"], "STARTED", timeout=30)
    return job["id"]


def api_client(sandbox) -> httpx.Client:
    return httpx.Client(base_url=sandbox.api_url, timeout=30, headers={"Authorization": f"Token {sandbox.token}"})
