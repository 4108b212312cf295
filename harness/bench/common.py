"""What every benchmark shares: the Measurement row, percentiles, worker-protocol calls, stacks and targets.

A benchmark runs on the sandbox by default; `python -m harness.bench --target antenna:PATH` hands it a
TargetSpec of a real Antenna checkout instead (see docs/benchmarks.md, "On Antenna"). The helpers below that
take a `target` work on both: jobs are created through the target's `create_path` and started with
POST /jobs/{id}/run/, and Antenna's times are read from its database (its API answers naive local time).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import httpx
import psycopg

from harness.client import SandboxClient
from harness.infra import Stack
from harness.targets import TargetSpec

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
def running_target(spec: TargetSpec, settings: dict, **options) -> Iterator:
    """A started target of `spec` (the sandbox or an Antenna checkout; fixes on: Antenna's patched copy)."""
    target = spec.build(settings, **options).start()
    try:
        yield target
    finally:
        target.stop(graceful=False)  # a benchmark's stack is thrown away


def running_stack(settings: dict, **kwargs) -> contextlib.AbstractContextManager[Stack]:
    """A started sandbox stack, thrown away on exit."""
    return running_target(TargetSpec("sandbox"), settings, **kwargs)


def started_job_on(target, images: int, timeout: float = 120) -> int:
    """A job of `images` images created through the target's create_path, started (POST /run/) and STARTED."""
    with api(target) as http:
        response = http.post(target.create_path, json={"images": images, "pipeline": PIPELINE})
        response.raise_for_status()
        job_id = response.json()["id"]
        http.post(f"/jobs/{job_id}/run/").raise_for_status()
        deadline = time.monotonic() + timeout
        while (status := job(http, job_id)["status"]) != "STARTED":
            if status in ("SUCCESS", "FAILURE", "REVOKED") or time.monotonic() > deadline:
                raise RuntimeError(f"job {job_id} is {status}, not STARTED")
            time.sleep(0.05)
    return job_id


def job_record(target, job_id: int) -> dict:
    """The target's own record of a job (harness/targets/base.py Records.read_job_details): status, finished_at
    in unix seconds, progress, logs, stored results."""
    with psycopg.connect(target.settings["CHAOS_DATABASE_URL"], autocommit=True) as db:
        return target.records.read_job_details(db, [job_id])[job_id]


def updated_unix(target, job_id: int) -> float:
    """jobs_job.updated_at in unix seconds (the clock of Antenna's idle rule; the same column on the sandbox)."""
    with psycopg.connect(target.settings["CHAOS_DATABASE_URL"], autocommit=True) as db:
        return float(db.execute("select extract(epoch from updated_at) from jobs_job where id = %s",
                                (job_id,)).fetchone()[0])


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
