"""A small HTTP client for the sandbox's job API: what people (and tests) do, not what workers do."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

FINAL = ("SUCCESS", "FAILURE", "REVOKED")


class JobTimeout(AssertionError):
    pass


@dataclass
class SandboxClient:
    api_url: str
    token: str
    timeout: float = 30.0

    def __post_init__(self):
        self.http = httpx.Client(base_url=self.api_url, timeout=self.timeout,
                                 headers={"Authorization": f"Token {self.token}"})

    def close(self):
        self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _json(self, response: httpx.Response) -> dict:
        response.raise_for_status()
        return response.json()

    def create_job(self, images: int, pipeline: str = "moth-detector", start: bool = False, **extra) -> dict:
        body = {"images": images, "pipeline": pipeline, "start": start, **extra}
        return self._json(self.http.post("/jobs/", json=body))

    def job(self, job_id: int, queue: bool = False) -> dict:
        return self._json(self.http.get(f"/jobs/{job_id}/", params={"queue": "1"} if queue else None))

    def action(self, job_id: int, verb: str) -> httpx.Response:
        """POST run/retry/cancel; returns the raw response (a refused Start is a 409)."""
        return self.http.post(f"/jobs/{job_id}/{verb}/")

    def start(self, job_id: int) -> dict:
        return self._json(self.action(job_id, "run"))

    def cancel(self, job_id: int) -> dict:
        return self._json(self.action(job_id, "cancel"))

    def wait_for_status(self, job_id: int, statuses=FINAL, timeout: float = 60.0, poll: float = 0.1) -> dict:
        """Poll until the job's status is one of `statuses`; raises JobTimeout with the last state."""
        statuses = (statuses,) if isinstance(statuses, str) else tuple(statuses)
        deadline, job = time.monotonic() + timeout, {}
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job["status"] in statuses:
                return job
            time.sleep(poll)
        raise JobTimeout(f"job {job_id} not in {statuses} after {timeout}s: status={job.get('status')} "
                         f"progress={job.get('progress', {}).get('summary')}")
