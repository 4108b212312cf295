"""What the harness needs from the system under test: the sandbox and a real Antenna checkout both provide it.

A target is a running stack: NATS, Redis and PostgreSQL from the harness, plus the host's web app and
Celery processes. Scenarios, checkers, workers and the CLI only use what is named here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable


def progress_counts(progress: dict | None) -> dict:
    """The counts of Antenna's progress JSON, which the sandbox mirrors: stage "collect" param total_images,
    stage "process" params processed, remaining and failed. Antenna creates them as "", which reads as 0."""
    stages = {stage.get("key"): stage for stage in (progress or {}).get("stages", [])}

    def params(stage: str) -> dict:
        return {p.get("key"): p.get("value") for p in stages.get(stage, {}).get("params", [])}

    def count(value) -> int:
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0

    process, collect = params("process"), params("collect")
    return {"total_images": count(collect.get("total_images")), "processed": count(process.get("processed")),
            "remaining": count(process.get("remaining")), "failed": count(process.get("failed"))}


@runtime_checkable
class Records(Protocol):
    """Reads a host's database into the plain dicts the checkers judge (see harness/checks/snapshot.py).

    read_jobs: {job_id: {"id", "status", "attempt", "progress": {"total_images", "processed", "remaining",
    "failed"}}}. read_job_details adds "finished_at" (unix seconds or None), "images" (count), "logs"
    ([{"level", "message"}]) and "results" ({"rows", "distinct_images", "duplicates": [[attempt, image, n]],
    "subjects": [[image, reply_subject]]}).
    """

    PUBLISHED: str  # the job-log line prefix a Start writes once it has published its tasks

    def read_jobs(self, db, job_ids: list[int]) -> dict[int, dict]: ...

    def read_job_details(self, db, job_ids: list[int]) -> dict[int, dict]: ...


@runtime_checkable
class Target(Protocol):
    kind: str  # "sandbox" | "antenna"
    settings: dict[str, str]  # CHAOS_* settings, with CHAOS_DATABASE_URL / CHAOS_NATS_URL / CHAOS_REDIS_URL
    token: str | None  # a worker token: `Authorization: Token <token>`
    records: Records
    create_path: str  # POST {"images": n} here (relative to api_url) creates a job; answers 201 {"id": ...}
    anonymous_reads: bool  # the host lets anyone read the job list (Antenna: public projects); writes need a token

    @property
    def api_url(self) -> str: ...  # the worker API base (…/api/v2)

    def start(self) -> Target: ...

    def stop(self, graceful: bool = True) -> None: ...

    def services(self) -> Mapping[str, object]: ...  # name -> ManagedProcess (nats, redis, postgres, web, …)

    def restart_component(self, name: str, **kwargs) -> object: ...

    def revoke(self, job: int) -> None:
        """REVOKE the job the way the host's watchdog does."""
        ...
