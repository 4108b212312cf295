"""What every benchmark shares: the Measurement row, percentiles, worker-protocol calls, stacks."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import httpx

from harness.client import SandboxClient
from harness.infra import Stack

PIPELINE = "moth-detector"


@dataclass
class Measurement:
    benchmark: str
    metric: str
    value: float
    unit: str
    note: str = ""


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@contextlib.contextmanager
def running_stack(settings: dict, **kwargs) -> Iterator[Stack]:
    stack = Stack(settings=settings, **kwargs).start()
    try:
        yield stack
    finally:
        stack.stop(graceful=False)  # a benchmark's stack is thrown away


def api(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.api_url, timeout=60, headers={"Authorization": f"Token {stack.token}"})


def started_job(stack: Stack, images: int) -> int:
    with SandboxClient(stack.api_url, stack.token) as client:
        job_id = client.create_job(images=images, pipeline=PIPELINE, start=True)["id"]
        client.wait_for_status(job_id, "STARTED", timeout=60, poll=0.05)
    return job_id


def reserve(http: httpx.Client, job_id: int, size: int) -> list[dict]:
    response = http.post(f"/jobs/{job_id}/tasks/", json={"batch_size": size})
    response.raise_for_status()
    return response.json()["tasks"]


def job(http: httpx.Client, job_id: int) -> dict:
    response = http.get(f"/jobs/{job_id}/")
    response.raise_for_status()
    return response.json()


def unix_time(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def wait_final(http: httpx.Client, job_id: int, timeout: float, poll: float = 0.05) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        data = job(http, job_id)
        if data["status"] in ("SUCCESS", "FAILURE", "REVOKED"):
            return data
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {data['status']} after {timeout}s")
        time.sleep(poll)
