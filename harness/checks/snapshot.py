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
from harness.targets import sandbox as sandbox_records
from harness.targets.base import Records

TERMINAL = ("SUCCESS", "FAILURE", "REVOKED")


@dataclass(frozen=True)
class Sources:
    """Where a target keeps its state (its own database, not the server's default one)."""

    database_url: str
    nats_url: str
    redis_url: str
    settings: dict = field(default_factory=dict)
    records: Records = sandbox_records  # how the target's database is read

    @classmethod
    def of(cls, target) -> Sources:
        return cls(target.settings["CHAOS_DATABASE_URL"], target.nats.url, target.redis.url, dict(target.settings),
                   target.records)

    def names(self) -> QueueNames:
        """The stack's stream and consumer names: with fencing on, each attempt has its own consumer."""
        return QueueNames.of(self.settings)


def redis_keys(job_id: int) -> dict[str, str]:
    """Antenna's progress keys (AsyncJobState)."""
    return {"process": f"job:{job_id}:pending_images:process", "failed": f"job:{job_id}:failed_images",
            "total": f"job:{job_id}:pending_images_total"}


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

    from fixes.jetstream.queue import servers

    try:
        nc = await nats.connect(servers(sources.nats_url), connect_timeout=2, allow_reconnect=False)
    except Exception as exc:
        return dict.fromkeys(attempts), [f"connect: {type(exc).__name__}: {exc}"]
    try:
        queues, failures = await read_queues(nc.jetstream(timeout=2.0), sources.names(), attempts)
        return queues, [f"job {job_id}: {type(exc).__name__}: {exc}" for job_id, exc in failures]
    finally:
        with contextlib.suppress(Exception):
            await nc.close()


NATS_PATIENCE = 10.0  # seconds the final snapshot waits for NATS to answer about every job


def _settled_queues(sources: Sources, attempts: dict[int, int], patience: float = NATS_PATIENCE):
    """The final queues; those NATS did not answer for are asked again until `patience` runs out (a cluster
    just healed may still be electing its leaders)."""
    deadline = time.monotonic() + patience
    queues, errors = asyncio.run(_final_queues(sources, attempts))
    while errors and time.monotonic() < deadline:
        time.sleep(0.5)
        unanswered = {job_id: attempt for job_id, attempt in attempts.items() if queues.get(job_id) is None}
        again, errors = asyncio.run(_final_queues(sources, unanswered))
        queues.update({job_id: queue for job_id, queue in again.items() if queue is not None})
    return queues, errors


# --- the final snapshot ----------------------------------------------------------------------------------


def collect(sources: Sources, job_ids: Iterable[int]) -> dict:
    """Everything the checkers judge, as plain data. Sources that do not answer leave None behind."""
    import psycopg

    job_ids = sorted(set(job_ids))
    with psycopg.connect(sources.database_url, connect_timeout=5, autocommit=True) as db:
        jobs = sources.records.read_job_details(db, job_ids)
    queues, errors = _settled_queues(sources, {job_id: job["attempt"] for job_id, job in jobs.items()})
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
