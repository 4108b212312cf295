"""What must hold after a load run, read straight from the stack's PostgreSQL and NATS monitoring."""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field

import httpx
import psycopg

TERMINAL = ("SUCCESS", "FAILURE", "REVOKED")


class StreamSampler(threading.Thread):
    """Samples every job stream's message count through NATS's /jsz while the load runs; keeps the maximum.

    A stream never holds more messages than its job has images unless tasks were published twice.
    Also keeps the longest Celery queue seen (results posted but not yet processed) when given Redis.
    """

    def __init__(self, monitor_url: str, redis_client=None, interval: float = 0.5):
        super().__init__(name="stream-sampler", daemon=True)
        self.url, self.interval = f"{monitor_url}/jsz?streams=true&limit=10000", interval
        self.redis = redis_client
        self.max_messages: dict[str, int] = defaultdict(int)
        self.max_celery_queue = 0
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=5) as http:
            while not self._halt.is_set():
                try:
                    details = http.get(self.url).json().get("account_details") or []
                except (httpx.HTTPError, ValueError):
                    details = []  # a sample missed while NATS is busy proves nothing either way
                for account in details:
                    for stream in account.get("stream_detail") or []:
                        name, messages = stream["name"], stream["state"]["messages"]
                        self.max_messages[name] = max(self.max_messages[name], messages)
                if self.redis is not None:
                    self.max_celery_queue = max(self.max_celery_queue, self.redis.llen("celery"))
                self.samples += 1
                self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


@dataclass
class JobRow:
    id: int
    status: str
    attempt: int
    images: int
    processed: int
    failed: int
    distinct_results: int
    error_logs: int
    reasons: list[str] = field(default_factory=list)  # the ERROR log lines (why a job failed)


@dataclass
class Report:
    jobs: list[JobRow]
    duplicate_results: list[tuple] = field(default_factory=list)  # (job, attempt, image, rows)
    max_stream_messages: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def job_rows(database_url: str, job_ids: list[int]) -> tuple[list[JobRow], list[tuple]]:
    with psycopg.connect(database_url, connect_timeout=5) as db:
        jobs = db.execute(
            """select j.id, j.status, j.attempt, j.progress,
                      (select count(*) from jobs_job_images ji where ji.job_id = j.id),
                      (select count(distinct r.image_id) from jobs_imageresult r
                        where r.job_id = j.id and r.attempt = j.attempt),
                      (select count(*) from jobs_joblog l where l.job_id = j.id and l.level = 'ERROR')
                 from jobs_job j where j.id = any(%s) order by j.id""", (job_ids,)).fetchall()
        errors = db.execute("select job_id, message from jobs_joblog where level = 'ERROR' and job_id = any(%s) "
                            "order by id", (job_ids,)).fetchall()
        duplicates = db.execute(
            """select job_id, attempt, image_id, count(*) from jobs_imageresult where job_id = any(%s)
               group by job_id, attempt, image_id having count(*) > 1 order by 1, 2, 3""", (job_ids,)).fetchall()
    rows = []
    for job_id, status, attempt, progress, images, distinct, error_count in jobs:
        process = {p["key"]: p["value"] for p in _stage(progress, "process")["params"]}
        reasons = [message for job, message in errors if job == job_id]
        rows.append(JobRow(job_id, status, attempt, images, process["processed"], process["failed"], distinct,
                           error_count, reasons))
    return rows, duplicates


def _stage(progress: dict, key: str) -> dict:
    return next(stage for stage in progress["stages"] if stage["key"] == key)


def images_without_result(database_url: str, job_ids: list[int]) -> list[tuple[int, int]]:
    """(job, image) pairs of the given jobs whose current attempt stored no result."""
    with psycopg.connect(database_url, connect_timeout=5) as db:
        return db.execute(
            """select ji.job_id, ji.sourceimage_id from jobs_job_images ji join jobs_job j on j.id = ji.job_id
                where ji.job_id = any(%s) and not exists (
                      select 1 from jobs_imageresult r
                       where r.job_id = ji.job_id and r.attempt = j.attempt and r.image_id = ji.sourceimage_id)
                order by 1, 2""", (job_ids,)).fetchall()


# FAILURE reasons that name a destroyed queue or progress state: with faults firing, such a job's
# missing images were taken by the fault, not lost by the app
DESTROYED_BY_FAULT = ("is gone", "missing in Redis")


def account_for_dead_images(database_url: str, jobs: list[JobRow], handed: dict, crashed: dict,
                            max_deliver: int, faults: bool = False) -> tuple[dict[str, int], list[str]]:
    """Why each image of a failed job has no result, from what the swarm saw of it.

    abandoned: every delivery that reached a worker was dropped, max_deliver of them: really dead.
    answered:  a worker posted a result for it, yet none was stored (the job failed while it waited).
    lost:      fewer than max_deliver deliveries ever reached a worker, all dropped: deliveries vanished
               between NATS and the HTTP response.
    faulted:   (only with `faults`) a fault ended the job: it was revoked, or it failed because a fault
               wiped its stream or its Redis state.
    """
    failed = [job.id for job in jobs if job.status != "SUCCESS"]
    faulted = {job.id for job in jobs if faults and (
        job.status == "REVOKED" or any(cause in reason for reason in job.reasons for cause in DESTROYED_BY_FAULT))}
    kinds = {"abandoned": 0, "answered": 0, "lost": 0, "faulted": 0}
    examples: dict[str, list[str]] = {kind: [] for kind in kinds}
    for job_id, image_id in images_without_result(database_url, failed) if failed else []:
        key = f"{job_id}:{image_id}"
        got, dropped = handed.get(key, 0), crashed.get(key, 0)
        kind = ("faulted" if job_id in faulted else "answered" if got > dropped
                else "abandoned" if got >= max_deliver else "lost")
        kinds[kind] += 1
        if len(examples[kind]) < 5:
            examples[kind].append(f"job {job_id} image {image_id} (received {got}, dropped {dropped})")
    violations = []
    if kinds["answered"]:
        violations.append(f"{kinds['answered']} images of failed jobs were answered but have no stored result, "
                          f"e.g. {', '.join(examples['answered'])}")
    if kinds["lost"]:
        violations.append(f"{kinds['lost']} images died with fewer than max_deliver={max_deliver} deliveries "
                          f"reaching a worker, e.g. {', '.join(examples['lost'])}")
    return kinds, violations


def check(database_url: str, job_ids: list[int], max_stream_messages: dict[str, int],
          stream_name=lambda job_id: f"job_{job_id}") -> Report:
    jobs, duplicates = job_rows(database_url, job_ids)
    report = Report(jobs, duplicates, dict(max_stream_messages))
    if len(jobs) != len(job_ids):
        report.violations.append(f"{len(job_ids) - len(jobs)} jobs missing from the database")
    for job in jobs:
        if job.status not in TERMINAL:
            report.violations.append(f"job {job.id} is {job.status}, not terminal")
        most = max_stream_messages.get(stream_name(job.id), 0)
        if most > job.images:
            report.violations.append(f"job {job.id}: stream held {most} messages for {job.images} images")
        if job.processed != job.distinct_results:
            report.violations.append(f"job {job.id}: progress says {job.processed} processed, "
                                     f"{job.distinct_results} images have a result")
        if job.status == "SUCCESS" and job.processed != job.images:
            report.violations.append(f"job {job.id}: SUCCESS with {job.processed} of {job.images} processed")
        if job.status == "FAILURE" and job.error_logs == 0:
            report.violations.append(f"job {job.id}: FAILURE without an ERROR log line")
    for job_id, attempt, image_id, n in duplicates:
        report.violations.append(f"job {job_id} attempt {attempt} image {image_id}: {n} result rows")
    return report
