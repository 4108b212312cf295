"""A real Antenna checkout as a target: it boots with the harness's servers, runs a job to SUCCESS for the
simulated workers, and its watchdog revokes a job through the control endpoint.

The checkout: CHAOS_TARGET=antenna:PATH, else the one CI lays out beside the project (../shared/targets/antenna);
skipped when there is none. The first run builds Antenna's virtualenv (~3 min) and migrates (~15 s).
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import httpx
import psycopg
import pytest

from harness.targets import Records, Target, TargetSpec, default_antenna_checkout
from harness.targets.base import progress_counts
from harness.waiting import poll_until
from harness.workers import run_workers

FINAL = ("SUCCESS", "FAILURE", "REVOKED")


def antenna_checkout() -> Path:
    text = os.environ.get("CHAOS_TARGET", "")
    if text.startswith("antenna"):
        try:
            return TargetSpec.parse(text).checkout
        except ValueError as exc:
            pytest.skip(f"CHAOS_TARGET: {exc}")
    checkout = default_antenna_checkout()
    if checkout is None:
        pytest.skip("no Antenna checkout: set CHAOS_TARGET=antenna:PATH (or lay one out at ../shared/targets/antenna)")
    return checkout


@pytest.fixture(scope="module")
def antenna():
    from harness.targets.antenna.stack import AntennaStack

    # One Celery process: HEAD can lose one of two progress saves that run at once (scenario s18), and its
    # watchdog then revokes the job; this file checks the happy path, not that race.
    with AntennaStack(antenna_checkout(), settings={"fixes": False}, celery_concurrency=1) as stack:
        yield stack


@pytest.fixture
def api(antenna):
    with httpx.Client(base_url=antenna.api_url, timeout=30.0,
                      headers={"Authorization": f"Token {antenna.token}"}) as client:
        yield client


def status(api: httpx.Client, job: int) -> str:
    return api.get(f"/jobs/{job}/").json()["status"]


def started_job(api: httpx.Client, images: int) -> int:
    created = api.post("/chaos/jobs/", json={"images": images})
    assert created.status_code == 201, created.text
    job = created.json()["id"]
    assert status(api, job) == "CREATED"  # the control endpoint creates, the person starts
    assert api.post(f"/jobs/{job}/run/").status_code == 200
    poll_until(lambda: status(api, job) in ("STARTED", *FINAL), timeout=60, interval=0.1, what=f"job {job} started")
    return job


def details(antenna, job: int) -> dict:
    with psycopg.connect(antenna.settings["CHAOS_DATABASE_URL"], autocommit=True) as db:
        return antenna.records.read_job_details(db, [job])[job]


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_antenna_is_a_target(antenna):
    assert isinstance(antenna, Target) and isinstance(antenna.records, Records)
    assert antenna.kind == "antenna" and antenna.token and antenna.api_url.endswith("/api/v2")
    assert {"nats", "redis", "postgres", "web", "celery_worker", "celery_beat"} <= set(antenna.services())


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_job_runs_to_success_with_simulated_workers(antenna, api):
    job = started_job(api, images=5)
    stop, summaries = threading.Event(), []

    def work():
        summaries.append(asyncio.run(run_workers(antenna.api_url, antenna.token, job_ids=[job], until_idle=False,
                                                 poll_interval=0.1, stop=stop)))

    worker = threading.Thread(target=work, name="antenna-workers")
    worker.start()
    try:
        final = poll_until(lambda: (s := status(api, job)) in FINAL and s, timeout=120, interval=0.2,
                           what=f"job {job} finished")
    finally:
        stop.set()
        worker.join(30)
    assert final == "SUCCESS"
    assert summaries and summaries[0].posted >= 5 and not summaries[0].http_errors

    job_record = details(antenna, job)
    assert job_record["status"] == "SUCCESS" and job_record["finished_at"] is not None
    assert job_record["images"] == 5
    assert job_record["progress"] == {"total_images": 5, "processed": 5, "remaining": 0, "failed": 0}
    assert job_record["results"]["distinct_images"] == 5
    assert any(line["message"].startswith(antenna.records.PUBLISHED) for line in job_record["logs"])


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_watchdog_revoke_ends_revoked(antenna, api):
    job = started_job(api, images=5)
    answer = antenna.revoke(job)
    assert answer["result"]["action"] == "revoked", answer
    final = poll_until(lambda: (s := status(api, job)) in FINAL and s, timeout=30, interval=0.1,
                       what=f"job {job} revoked")
    assert final == "REVOKED"
    job_record = details(antenna, job)
    assert job_record["finished_at"] is not None
    assert any(line["message"].startswith("Reaping stalled job") for line in job_record["logs"])


def test_records_read_antennas_progress_and_legacy_logs():
    from harness.targets.antenna import records

    created = {"stages": [{"key": "collect", "params": [{"key": "total_images", "value": ""}]},
                          {"key": "process", "params": [{"key": "processed", "value": ""},
                                                        {"key": "remaining", "value": 3}]}]}
    assert progress_counts(created) == {"total_images": 0, "processed": 0, "remaining": 3, "failed": 0}
    legacy = {"stdout": ["[2024-01-01 10:00:00] INFO Successfully queued 5/5 images", "[2024-01-01 10:00:01] boom"],
              "stderr": ["[2024-01-01 10:00:01] boom"]}
    assert records._legacy_logs(legacy) == [{"level": "INFO", "message": "Successfully queued 5/5 images"},
                                            {"level": "ERROR", "message": "boom"}]
