"""Read what the stack holds about some jobs into plain dicts: PostgreSQL, NATS JetStream and Redis.

With nats_reader.py and sampler.py, the only I/O of the checks. The checkers get its output (and the
timeline), never a connection. Every source is read independently: one that does not answer becomes None,
and what went wrong is kept under `read_errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from harness.checks.nats_reader import read_queues
from harness.checks.subjects import QueueNames

TERMINAL = ("SUCCESS", "FAILURE", "REVOKED")


@dataclass(frozen=True)
class Sources:
    """Where a stack keeps its state (the sandbox's database, not the server's default one)."""

    database_url: str
    nats_url: str
    redis_url: str
    settings: dict = field(default_factory=dict)

    @classmethod
    def of(cls, stack) -> Sources:
        return cls(stack.settings["CHAOS_DATABASE_URL"], stack.nats.url, stack.redis.url, dict(stack.settings))

    def names(self) -> QueueNames:
        """The stack's stream and consumer names: with fencing on, each attempt has its own consumer."""
        return QueueNames.of(self.settings)


def redis_keys(job_id: int) -> dict[str, str]:
    """Antenna's progress keys (AsyncJobState)."""
    return {"process": f"job:{job_id}:pending_images:process", "failed": f"job:{job_id}:failed_images",
            "total": f"job:{job_id}:pending_images_total"}


def _process_params(progress: dict) -> dict:
    stages = {stage["key"]: stage for stage in progress.get("stages", [])}
    params = {p["key"]: p["value"] for p in stages.get("process", {}).get("params", [])}
    collect = {p["key"]: p["value"] for p in stages.get("collect", {}).get("params", [])}
    return {"total_images": collect.get("total_images", 0), "processed": params.get("processed", 0),
            "remaining": params.get("remaining", 0), "failed": params.get("failed", 0)}


# --- PostgreSQL ------------------------------------------------------------------------------------------


def read_jobs(db, job_ids: list[int]) -> dict[int, dict]:
    """Status, attempt and progress of each job (the sampler's cheap read)."""
    rows = db.execute("select id, status, attempt, progress from jobs_job where id = any(%s)", (job_ids,)).fetchall()
    return {job_id: {"id": job_id, "status": status, "attempt": attempt, "progress": _process_params(progress)}
            for job_id, status, attempt, progress in rows}


def read_job_details(db, job_ids: list[int]) -> dict[int, dict]:
    """read_jobs plus when the job ended (finished_at, unix seconds), image count, log lines and stored
    results (the final snapshot)."""
    jobs = read_jobs(db, job_ids)
    for job_id, finished_at in db.execute("select id, extract(epoch from finished_at) from jobs_job "
                                          "where id = any(%s)", (job_ids,)):
        jobs[job_id]["finished_at"] = None if finished_at is None else float(finished_at)
    for job_id, images in db.execute("select job_id, count(*) from jobs_job_images where job_id = any(%s) "
                                     "group by job_id", (job_ids,)):
        jobs[job_id]["images"] = images
    for job in jobs.values():
        job.setdefault("images", 0)
        job.update(logs=[], results={"rows": 0, "distinct_images": 0, "duplicates": [], "subjects": []})
    for job_id, level, message in db.execute("select job_id, level, message from jobs_joblog "
                                             "where job_id = any(%s) order by id", (job_ids,)):
        jobs[job_id]["logs"].append({"level": level, "message": message})
    for job_id, attempt, image_id, count in db.execute(
            "select job_id, attempt, image_id, count(*) from jobs_imageresult where job_id = any(%s) "
            "group by job_id, attempt, image_id order by 1, 2, 3", (job_ids,)):
        results = jobs[job_id]["results"]
        results["rows"] += count
        if attempt == jobs[job_id]["attempt"]:
            results["distinct_images"] += 1
        if count > 1:
            results["duplicates"].append([attempt, image_id, count])
    for job_id, image_id, subject in db.execute(
            "select r.job_id, r.image_id, r.reply_subject from jobs_imageresult r join jobs_job j "
            "on j.id = r.job_id and j.attempt = r.attempt where r.job_id = any(%s) order by r.id", (job_ids,)):
        jobs[job_id]["results"]["subjects"].append([image_id, subject])
    return jobs


# --- Redis -----------------------------------------------------------------------------------------------


def read_redis(client, job_ids: Iterable[int]) -> dict[int, dict]:
    pipe = client.pipeline()
    job_ids = list(job_ids)
    for job_id in job_ids:
        keys = redis_keys(job_id)
        pipe.get(keys["total"])
        pipe.scard(keys["process"])
        pipe.scard(keys["failed"])
    values = pipe.execute()
    out = {}
    for i, job_id in enumerate(job_ids):
        total, remaining, failed = values[3 * i: 3 * i + 3]
        out[job_id] = {"exists": total is not None, "total": int(total or 0), "remaining": remaining,
                       "failed": failed, "processed": int(total or 0) - remaining}
    return out


def redis_client(url: str, timeout: float = 0.5):
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)


# --- NATS ------------------------------------------------------------------------------------------------


async def _final_queues(sources: Sources, attempts: dict[int, int]) -> tuple[dict[int, dict | None], list[str]]:
    import nats

    try:
        nc = await nats.connect(sources.nats_url, connect_timeout=2, allow_reconnect=False)
    except Exception as exc:
        return dict.fromkeys(attempts), [f"connect: {type(exc).__name__}: {exc}"]
    try:
        queues, failures = await read_queues(nc.jetstream(timeout=2.0), sources.names(), attempts)
        return queues, [f"job {job_id}: {type(exc).__name__}: {exc}" for job_id, exc in failures]
    finally:
        with contextlib.suppress(Exception):
            await nc.close()


# --- the final snapshot ----------------------------------------------------------------------------------


def collect(sources: Sources, job_ids: Iterable[int]) -> dict:
    """Everything the checkers judge, as plain data. Sources that do not answer leave None behind."""
    import psycopg

    job_ids = sorted(set(job_ids))
    with psycopg.connect(sources.database_url, connect_timeout=5, autocommit=True) as db:
        jobs = read_job_details(db, job_ids)
    queues, errors = asyncio.run(_final_queues(sources, {job_id: job["attempt"] for job_id, job in jobs.items()}))
    errors = {"nats": errors} if errors else {}
    try:
        with redis_client(sources.redis_url, timeout=2.0) as client:
            progress = read_redis(client, job_ids)
    except Exception as exc:
        progress, errors["redis"] = {}, [f"{type(exc).__name__}: {exc}"]
    for job_id, job in jobs.items():
        job["queue"] = queues.get(job_id)
        job["redis"] = progress.get(job_id)
    return {"taken_at": time.time(), "settings": dict(sources.settings), "jobs": jobs, "read_errors": errors}
