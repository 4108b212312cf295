"""What must hold after a load run, read from the target's database through its `records` and from NATS monitoring.

The invariants are judged the same way on every target; where a target's database cannot tell a fact, the
invariant is weakened or left unjudged there and says so (`judgeable`).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import psycopg

TERMINAL = ("SUCCESS", "FAILURE", "REVOKED")


class StreamSampler(threading.Thread):
    """Samples every job stream's message count through NATS's /jsz while the load runs; keeps the maximum.

    A stream never holds more messages than its job has images unless tasks were published twice.
    Also keeps the longest Celery queue seen (results posted but not yet processed), given `backlog`: a callable
    answering the length of the queue the host's result tasks wait in.
    """

    def __init__(self, monitor_url: str, backlog: Callable[[], int] | None = None, interval: float = 0.5):
        super().__init__(name="stream-sampler", daemon=True)
        self.url, self.interval = f"{monitor_url}/jsz?streams=true&limit=10000", interval
        self.backlog = backlog
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
                if self.backlog is not None:
                    try:
                        self.max_celery_queue = max(self.max_celery_queue, self.backlog())
                    except Exception:  # noqa: BLE001 - Redis down under a fault: a missed sample, nothing more
                        pass
                self.samples += 1
                self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


@dataclass(frozen=True)
class Judgeable:
    """What a target's database can tell the invariants.

    error_results_stored: an error result leaves a stored row (the sandbox), so `processed` must equal the images
        with a result. Antenna stores nothing for an error result (it only counts the image failed), so there
        `processed - failed <= images with a result <= processed`.
    image_ledger: the database says *which* images of a job have a result (the sandbox's job-to-image table and
        per-image result rows), so each image a failed job lacks can be accounted for. Antenna's records give
        counts only.
    """

    error_results_stored: bool = True
    image_ledger: bool = True

    @classmethod
    def of(cls, kind: str) -> Judgeable:
        return cls() if kind == "sandbox" else cls(error_results_stored=False, image_ledger=False)

    def not_judged(self) -> dict[str, str]:
        """Invariants left unjudged or weakened on this target, and why."""
        out = {}
        if not self.error_results_stored:
            out["progress counts each result once"] = (
                "weakened to processed - failed <= images with a result <= processed: an error result stores no "
                "row, so the database cannot tell an image answered with an error from one never answered")
        if not self.image_ledger:
            out["images of failed jobs without a result were abandoned"] = (
                "not judged: the records give per-job counts, not which image has a result, so the images a "
                "failed job lacks cannot be matched with what the workers received and dropped")
        return out


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
    last_logs: list[str] = field(default_factory=list)  # a job that did not succeed: its last log lines


@dataclass
class Report:
    jobs: list[JobRow]
    duplicate_results: list[tuple] = field(default_factory=list)  # (job, attempt, image, rows)
    max_stream_messages: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def job_rows(details: dict[int, dict]) -> tuple[list[JobRow], list[tuple]]:
    """The rows judged, from a target's `records.read_job_details` (harness/targets/base.py)."""
    rows, duplicates = [], []
    for job_id in sorted(details):
        job = details[job_id]
        reasons = [line["message"] for line in job["logs"] if line["level"] == "ERROR"]
        progress, results = job["progress"], job["results"]
        tail = [] if job["status"] == "SUCCESS" else [f"{line['level']} {line['message']}" for line in job["logs"][-5:]]
        rows.append(JobRow(job_id, job["status"], job["attempt"], job["images"], progress["processed"],
                           progress["failed"], results["distinct_images"], len(reasons), reasons, tail))
        duplicates += [(job_id, attempt, image, n) for attempt, image, n in results["duplicates"]]
    return rows, duplicates


def read_details(records, database_url: str, job_ids: list[int]) -> dict[int, dict]:
    with psycopg.connect(database_url, connect_timeout=5) as db:
        return records.read_job_details(db, job_ids)


def images_without_result(database_url: str, job_ids: list[int]) -> list[tuple[int, int]]:
    """(job, image) pairs of the given jobs whose current attempt stored no result. The sandbox's schema only:
    no other target's records say which image has a result (Judgeable.image_ledger)."""
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
# FAILURE reasons that say the job's progress state was gone (the sandbox's, Antenna's): its progress stops at
# the wipe, and results stored after it are kept, uncounted
PROGRESS_STATE_GONE = ("missing in Redis", "not found in Redis")


def account_for_dead_images(database_url: str, jobs: list[JobRow], handed: dict, crashed: dict,
                            max_deliver: int, faults: bool = False) -> tuple[dict[str, int], list[str]]:
    """Why each image of a failed job has no result, from what the swarm saw of it (sandbox only, see
    images_without_result).

    abandoned: every delivery that reached a worker was dropped, max_deliver of them: really dead.
    answered:  a worker posted a result for it, yet none was stored (the job failed while it waited).
    lost:      fewer than max_deliver deliveries ever reached a worker, all dropped: deliveries vanished
               between NATS and the HTTP response.
    faulted:   (only with `faults`) a fault ended the job: it was revoked, or it failed because a fault
               wiped its stream or its Redis state.
    """
    failed = [job.id for job in jobs if job.status != "SUCCESS"]
    missing = images_without_result(database_url, failed) if failed else []
    return classify_dead_images(missing, jobs, handed, crashed, max_deliver, faults)


def classify_dead_images(missing: list[tuple[int, int]], jobs: list[JobRow], handed: dict, crashed: dict,
                         max_deliver: int, faults: bool = False) -> tuple[dict[str, int], list[str]]:
    """account_for_dead_images on the (job, image) pairs without a result."""
    faulted = {job.id for job in jobs if faults and (
        job.status == "REVOKED" or any(cause in reason for reason in job.reasons for cause in DESTROYED_BY_FAULT))}
    kinds = {"abandoned": 0, "answered": 0, "lost": 0, "faulted": 0}
    examples: dict[str, list[str]] = {kind: [] for kind in kinds}
    for job_id, image_id in missing:
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


def judge(jobs: list[JobRow], duplicates: list[tuple], job_ids: list[int], max_stream_messages: dict[str, int],
          judgeable: Judgeable = Judgeable(), stream_name=lambda job_id: f"job_{job_id}") -> Report:
    report = Report(jobs, duplicates, dict(max_stream_messages))
    if len(jobs) != len(job_ids):
        report.violations.append(f"{len(job_ids) - len(jobs)} jobs missing from the database")
    for job in jobs:
        if job.status not in TERMINAL:
            report.violations.append(f"job {job.id} is {job.status}, not terminal")
        most = max_stream_messages.get(stream_name(job.id), 0)
        if most > job.images:
            report.violations.append(f"job {job.id}: stream held {most} messages for {job.images} images")
        counted_at_most = job.processed - (0 if judgeable.error_results_stored else job.failed)
        if job.status == "FAILURE" and any(gone in reason for reason in job.reasons for gone in PROGRESS_STATE_GONE):
            if counted_at_most > job.distinct_results:  # kept-but-uncounted is allowed, counted-but-unstored is not
                report.violations.append(f"job {job.id}: progress says {job.processed} processed ({job.failed} "
                                         f"failed), only {job.distinct_results} images have a result")
        elif judgeable.error_results_stored and job.processed != job.distinct_results:
            report.violations.append(f"job {job.id}: progress says {job.processed} processed, "
                                     f"{job.distinct_results} images have a result")
        elif not judgeable.error_results_stored and not (
                job.processed - job.failed <= job.distinct_results <= job.processed):
            report.violations.append(f"job {job.id}: progress says {job.processed} processed ({job.failed} "
                                     f"failed), {job.distinct_results} images have a result")
        if job.status == "SUCCESS" and job.processed != job.images:
            report.violations.append(f"job {job.id}: SUCCESS with {job.processed} of {job.images} processed")
        if job.status == "FAILURE" and job.error_logs == 0:
            report.violations.append(f"job {job.id}: FAILURE without an ERROR log line")
    twice: dict[int, list[str]] = defaultdict(list)
    for job_id, attempt, image_id, n in duplicates:
        twice[job_id].append(f"attempt {attempt} image {image_id}: {n}")
    for job_id, images in twice.items():
        report.violations.append(f"job {job_id}: {len(images)} images with more than one stored result ("
                                 f"{', '.join(images[:5])}{', …' if len(images) > 5 else ''})")
    return report


def check(records, database_url: str, job_ids: list[int], max_stream_messages: dict[str, int],
          judgeable: Judgeable = Judgeable(), stream_name=lambda job_id: f"job_{job_id}") -> Report:
    """Read the jobs through the target's records and judge them."""
    jobs, duplicates = job_rows(read_details(records, database_url, job_ids))
    return judge(jobs, duplicates, job_ids, max_stream_messages, judgeable, stream_name)
