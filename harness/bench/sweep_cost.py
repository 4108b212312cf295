"""(c) What one reaper sweep pass costs over many running jobs.

A stack without Celery beat (so no sweep runs on its own) gets `jobs` STARTED async jobs of one image each,
every one with its own stream and consumer, nothing reserved. Then `manage.py chaos_sweep --passes N`
times `fixes.django.reaper.sweep()` in one process: the first pass stores an observation per job, later
passes also load the previous one (the steady state under beat). Per job a pass takes one queue snapshot
(consumer_info + stream_info) and the Redis counts; the stored observations are read in one query, the
snapshots taken concurrently in one bridge call, the counts in one Redis pipeline and the observations
written back in one upsert.
"""

from __future__ import annotations

import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg

from harness.bench.common import PIPELINE, Measurement, api, running_stack


def create_started_jobs(stack, count: int, threads: int = 4, timeout: float = 600) -> None:
    def create(_):
        with api(stack) as http:
            response = http.post("/jobs/", json={"images": 1, "pipeline": PIPELINE, "start": True})
            response.raise_for_status()

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(create, range(count)))
    deadline = time.monotonic() + timeout
    with psycopg.connect(stack.settings["CHAOS_DATABASE_URL"], autocommit=True) as db:
        while db.execute("select count(*) from jobs_job where status = 'STARTED'").fetchone()[0] < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {count} jobs STARTED after {timeout}s")
            time.sleep(0.5)


def run(jobs: int = 1000, passes: int = 3) -> list[Measurement]:
    settings = {"fixes": "on", "ack_wait": 300, "max_deliver": 3, "sweep_interval": 60}
    with running_stack(settings, web_workers=2, beat=False) as stack:
        began = time.perf_counter()
        create_started_jobs(stack, jobs)
        setup_seconds = time.perf_counter() - began
        lines = stack.manage("chaos_sweep", "--passes", str(passes), timeout=600).strip().splitlines()
    results = [json.loads(line) for line in lines if line.startswith("{")]
    assert all(r["looked_at"] == jobs and r["failed"] == 0 and r.get("skipped", 0) == 0 for r in results), results
    first, later = results[0]["seconds"], [r["seconds"] for r in results[1:]]
    steady = statistics.median(later) if later else first
    name, note = "sweep_cost", f"{jobs} STARTED jobs, 1 image each; setup {setup_seconds:.0f} s"
    return [Measurement(name, "first pass (stores observations)", first, "s", note),
            Measurement(name, "later pass, median", steady, "s", f"{len(later)} passes"),
            Measurement(name, "later pass per job", steady / jobs * 1000, "ms", ""),
            Measurement(name, "jobs swept per second", jobs / steady, "jobs/s", "")]
