"""Per-job progress counters in Redis, with Antenna's key names (AsyncJobState)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=1)
def client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=2, decode_responses=True
    )


def _keys(job_id: int) -> dict[str, str]:
    return {
        "process": f"job:{job_id}:pending_images:process",
        "results": f"job:{job_id}:pending_images:results",
        "failed": f"job:{job_id}:failed_images",
        "total": f"job:{job_id}:pending_images_total",
    }


@dataclass(frozen=True)
class Counts:
    total: int
    remaining: int
    failed: int
    exists: bool  # False: the job's Redis state is gone (flushed or never initialised)

    @property
    def processed(self) -> int:
        return self.total - self.remaining


def initialise(job_id: int, image_ids: list[int]) -> None:
    k = _keys(job_id)
    pipe = client().pipeline()
    pipe.delete(*k.values())
    if image_ids:
        pipe.sadd(k["process"], *image_ids)
        pipe.sadd(k["results"], *image_ids)
    pipe.set(k["total"], len(image_ids))
    pipe.execute()


def record_batch(job_id: int, images: list[tuple[int, bool]]) -> tuple[list[bool], Counts]:
    """Mark each (image_id, failed) processed and read counts(), in one round trip: whether each was the
    first result for its image (a repeat within the batch is not; a result posted twice counts once), and
    the counts after the batch."""
    k = _keys(job_id)
    pipe = client().pipeline()
    for image_id, failed in images:
        pipe.srem(k["process"], image_id)
        pipe.srem(k["results"], image_id)
        if failed:
            pipe.sadd(k["failed"], image_id)
    _queue_counts(pipe, k)
    replies = pipe.execute()
    firsts, at = [], 0
    for _, failed in images:
        firsts.append(bool(replies[at]))
        at += 3 if failed else 2
    return firsts, _counts(*replies[at:])


def counts(job_id: int) -> Counts:
    pipe = client().pipeline()
    _queue_counts(pipe, _keys(job_id))
    return _counts(*pipe.execute())


def _queue_counts(pipe, k: dict[str, str]) -> None:
    pipe.get(k["total"])
    pipe.scard(k["process"])
    pipe.scard(k["failed"])


def _counts(total, remaining, failed) -> Counts:
    return Counts(total=int(total or 0), remaining=remaining, failed=failed, exists=total is not None)


@dataclass(frozen=True)
class Progress:
    """What the reaper reads per job: the counts and a sample of the unprocessed image ids."""

    counts: Counts
    pending_image_ids: list[str]


def progress_many(job_ids: list[int], limit: int = 50, chunk: int = 500) -> dict[int, Progress]:
    """Progress of many jobs (with up to `limit` unprocessed image ids) in one pipeline per `chunk` jobs.
    Only a set too big for one SSCAN reply costs its job more round trips."""
    found: dict[int, Progress] = {}
    for at in range(0, len(job_ids), chunk):
        part = job_ids[at:at + chunk]
        pipe = client().pipeline(transaction=False)
        for job_id in part:
            k = _keys(job_id)
            _queue_counts(pipe, k)
            pipe.sscan(k["process"], 0, count=limit)
        replies = pipe.execute()
        for n, job_id in enumerate(part):
            total, remaining, failed, (cursor, ids) = replies[n * 4:n * 4 + 4]
            found[job_id] = Progress(counts=_counts(total, remaining, failed),
                                     pending_image_ids=_pending_sample(job_id, limit, cursor, ids))
    return found


def _pending_sample(job_id: int, limit: int, cursor: int, ids) -> list[str]:
    """Up to `limit` unprocessed image ids for the job log, numerically sorted, given the first SSCAN page:
    further pages are read only while there are not enough (a 44k-image job is ~900 pages)."""
    ids = list(ids)
    while cursor != 0 and len(ids) < limit:
        cursor, page = client().sscan(_keys(job_id)["process"], cursor, count=limit)
        ids.extend(page)
    return sorted(ids[:limit], key=lambda s: int(s) if s.isdigit() else 0)


def clear(job_id: int) -> None:
    client().delete(*_keys(job_id).values())
