"""What the database, Redis and NATS say about a job agree, and a finished job leaves no queue behind."""

from __future__ import annotations

from collections.abc import Sequence

from harness.checks.ops import TERMINAL, jobs_of
from harness.checks.verdict import Verdict, no_evidence, verdict
from harness.history import Op


def no_leftover_queue(history: Sequence[Op], snapshot: dict) -> Verdict:
    """A terminal job has no stream and no consumer left (seed 003: REVOKED streams pile up).

    Jobs read, none terminal: a pass (no queue is left over yet; terminal_within_bound judges the ending).
    No job: unknown; a terminal job whose NATS did not answer: unknown.
    """
    if not jobs_of(snapshot):
        return no_evidence("no_leftover_queue", "no job in the final snapshot")
    violations, unknown, terminal = [], [], 0
    for job in jobs_of(snapshot):
        if job["status"] not in TERMINAL:
            continue
        terminal += 1
        queue = job.get("queue")
        if queue is None:
            unknown.append({"job": job["id"], "why": "NATS did not answer"})
        elif queue["stream_exists"] or queue["consumer_exists"]:
            violations.append({"job": job["id"], "status": job["status"], "stream": queue["stream_exists"],
                               "consumer": queue["consumer_exists"], "messages": queue["messages"],
                               "num_pending": queue["num_pending"], "num_ack_pending": queue["num_ack_pending"]})
    return verdict("no_leftover_queue", violations, {"terminal_jobs": terminal}, unknown)


def results_counted_once(history: Sequence[Op], snapshot: dict) -> Verdict:
    """Progress `processed` equals the images with a stored result in the attempt: none lost, none twice.

    A job that failed or was revoked may hold a stored result it never counted (it stopped counting);
    it may never count more results than it stored (images it marked failed without a result, e.g. as lost,
    count as processed and failed). A SUCCESS job has counted every image exactly once. No job: unknown.

    A Start may leave out images that already hold a result (Antenna skips what the pipeline processed in an
    earlier attempt): the job's total is then below its image count, and those images' results are not its
    attempt's to count.
    """
    violations, jobs = [], jobs_of(snapshot)
    if not jobs:
        return no_evidence("results_counted_once", "no job in the final snapshot")
    for job in jobs:
        progress = job["progress"]
        skipped = max(0, job["images"] - progress["total_images"]) if progress["total_images"] else 0
        processed, stored = progress["processed"], job["results"]["distinct_images"] - skipped
        stopped = job["status"] in ("FAILURE", "REVOKED")
        wrong = processed - progress["failed"] > stored if stopped else processed != stored
        if job["status"] == "SUCCESS" and processed + skipped != job["images"]:
            wrong = True
        if wrong:
            violations.append({"job": job["id"], "status": job["status"], "attempt": job["attempt"],
                               "images": job["images"], "processed": processed, "distinct_results": stored})
    return verdict("results_counted_once", violations, {"jobs": len(jobs)})


def progress_consistent(history: Sequence[Op], snapshot: dict) -> Verdict:
    """Database progress agrees with Redis, and a job with work left has that work in NATS.

    Work left but no stream, or nothing pending or in flight, is the silent death of seed 000.
    No job: unknown; a job whose Redis, or (with work left) NATS, did not answer: unknown.
    """
    if not jobs_of(snapshot):
        return no_evidence("progress_consistent", "no job in the final snapshot")
    violations, unknown = [], []
    for job in jobs_of(snapshot):
        db, redis, queue = job["progress"], job.get("redis"), job.get("queue")
        if redis is None:
            unknown.append({"job": job["id"], "why": "Redis did not answer"})
        elif redis["exists"] and (redis["processed"], redis["total"]) != (db["processed"], db["total_images"]):
            violations.append({"job": job["id"], "what": "database and Redis disagree", "database": db,
                               "redis": redis})
        if job["status"] == "SUCCESS" and (db["remaining"] != 0 or db["processed"] != db["total_images"]):
            violations.append({"job": job["id"], "what": "SUCCESS with work left", "database": db})
        if job["status"] in TERMINAL or db["remaining"] <= 0 or db["total_images"] == 0:
            continue
        if queue is None:
            unknown.append({"job": job["id"], "why": "NATS did not answer"})
        elif not (queue["stream_exists"] and queue["consumer_exists"]):
            violations.append({"job": job["id"], "what": f"{db['remaining']} tasks left, stream or consumer gone",
                               "stream": queue["stream_exists"], "consumer": queue["consumer_exists"]})
        elif queue["num_pending"] + queue["num_ack_pending"] == 0:
            violations.append({"job": job["id"], "what": f"{db['remaining']} tasks left, none pending or in flight "
                               "(dead in NATS)", "messages": queue["messages"],
                               "num_redelivered": queue["num_redelivered"]})
    return verdict("progress_consistent", violations, {"jobs": len(jobs_of(snapshot))}, unknown)
