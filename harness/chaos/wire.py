"""Worker-protocol and job-control calls that record themselves on the run's timeline.

Every call is an `invoke` op followed by `ok` (2xx/3xx), `fail` (4xx/5xx, with the status) or `info`
(no answer: the request may or may not have landed).
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from harness.history import History


class Wire:
    def __init__(self, api_url: str, token: str | None, history: History, process: str = "client",
                 timeout: float = 30.0, create_path: str = "/jobs/"):
        headers = {"Authorization": f"Token {token}"} if token else {}
        self.http = httpx.Client(base_url=api_url.rstrip("/"), timeout=timeout, headers=headers)
        self.history, self.process, self.create_path = history, process, create_path

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def call(self, f: str, method: str, path: str, job: int | None = None, extra: dict | None = None,
             describe: Callable[[httpx.Response], dict] | None = None, **kwargs) -> httpx.Response | None:
        self.history.append(self.process, f, "invoke", {"job": job, "path": path, **(extra or {})})
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            self.history.append(self.process, f, "info", {"job": job, "path": path, "error": repr(exc)})
            return None
        value = {"job": job, "path": path, "status": response.status_code}
        if response.status_code < 400 and describe is not None:
            value.update(describe(response))
        self.history.append(self.process, f, "ok" if response.status_code < 400 else "fail", value)
        return response

    # --- people ------------------------------------------------------------------------------------------

    def create(self, images: int, pipeline: str = "moth-detector") -> int:
        response = self.call("create", "POST", self.create_path, json={"images": images, "pipeline": pipeline},
                             describe=lambda r: {"created": r.json()["id"], "images": images})
        if response is None or response.status_code != 201:
            raise RuntimeError(f"could not create a job: {response and response.text}")
        return response.json()["id"]

    def start(self, job: int) -> int | None:
        """POST /run/; returns the status code (409: refused while running), None without an answer."""
        response = self.call("start", "POST", f"/jobs/{job}/run/", job)
        return None if response is None else response.status_code

    def cancel(self, job: int) -> int | None:
        response = self.call("cancel", "POST", f"/jobs/{job}/cancel/", job)
        return None if response is None else response.status_code

    # --- workers -----------------------------------------------------------------------------------------

    def reserve(self, job: int, batch: int = 16) -> list[dict]:
        response = self.call("reserve", "POST", f"/jobs/{job}/tasks/", job, json={"batch_size": batch},
                             describe=lambda r: {"reply_subjects": [t["reply_subject"] for t in r.json()["tasks"]]})
        if response is None or response.status_code != 200:
            return []
        return response.json()["tasks"]

    def post(self, job: int, results: list[dict]) -> dict | None:
        response = self.call("post", "POST", f"/jobs/{job}/result/", job, json={"results": results},
                             extra={"reply_subjects": [r["reply_subject"] for r in results]},
                             describe=lambda r: {"statuses": sorted({t["status"] for t in r.json()["tasks"]}),
                                                 "queued": r.json()["results_queued"],
                                                 "refused": {t["reply_subject"]: t["status"]
                                                             for t in r.json()["tasks"] if t["status"] != "queued"}})
        return None if response is None or response.status_code != 200 else response.json()

    def in_progress(self, job: int, reply_subjects: list[str]) -> int | None:
        response = self.call("heartbeat", "POST", f"/jobs/{job}/tasks/in_progress/", job,
                             extra={"reply_subjects": reply_subjects}, json={"reply_subjects": reply_subjects})
        return None if response is None else response.status_code


def result_for(task: dict) -> dict:
    """What a healthy worker posts for one task (one detection, one classification)."""
    from harness.workers.protocol import success_result

    return {"reply_subject": task["reply_subject"], "result": success_result(task)}
