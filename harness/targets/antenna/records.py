"""Antenna's database, read into the plain dicts the checkers judge (the `Records` of harness/targets/base.py).

Where each field comes from:

* status, finished_at: jobs_job. finished_at is a timestamptz written from Antenna's naive local time
  (USE_TZ=False; Django gives the session its TIME_ZONE), so its epoch is the real instant.
* attempt: jobs_job.attempt when the checkout has that column (the fixes-on patch adds it), else 0.
* progress: jobs_job.progress (JSON): stage "collect" param total_images, stage "process" params processed,
  remaining and failed. Antenna creates them as "" and fills them when the job runs; "" reads as 0.
* images: the source images in the job's capture set (Antenna has no job-to-image table).
* logs: jobs_joblog, one row per job-log line (Antenna writes there since #1259, the message without a
  timestamp); ERROR and CRITICAL read as "ERROR". A job without rows falls back to the legacy jobs_job.logs
  JSON ({"stdout": ["[time] LEVEL message", ...], "stderr": [...]}) with the prefix stripped.
* results: what Antenna stored for the job's images, counted per image. A *stored result* is one processing of
  an image that left rows behind: the Detection rows of that image sharing one detection_time (every detection
  of a result carries the result's timestamp; an image with no detection gets one null-bbox row). Antenna
  dedupes a detection by (image, bbox) whatever its algorithm, so posting the same result twice stores it
  once; processing an image again (a redelivery handled by another worker) stores a second result, which shows
  as a duplicate. Results are not tied to an attempt: all count for the job's current one.
* subjects: always [] — Antenna does not store the reply subject a result came with, it only acks it.
"""

from __future__ import annotations

import re

from harness.targets.base import progress_counts

PUBLISHED = "Successfully queued "  # ami/ml/orchestration/jobs.py: "Successfully queued {n}/{total} images ..."
ERROR_LEVELS = ("ERROR", "CRITICAL")
_LEGACY_LINE = re.compile(r"^\[[^\]]*\]\s+(?:(DEBUG|INFO|WARNING|ERROR|CRITICAL)\s+)?(.*)$", re.S)


def _level(level: str) -> str:
    return "ERROR" if level in ERROR_LEVELS else level


def _legacy_logs(logs: dict | None) -> list[dict]:
    stderr = set((logs or {}).get("stderr") or [])
    lines = []
    for line in (logs or {}).get("stdout") or []:
        match = _LEGACY_LINE.match(line)
        level, message = (match.group(1), match.group(2)) if match else (None, line)
        lines.append({"level": _level(level) if level else ("ERROR" if line in stderr else "INFO"),
                      "message": message})
    return lines


def read_jobs(db, job_ids: list[int]) -> dict[int, dict]:
    """Status, attempt and progress of each job (the sampler's cheap read)."""
    rows = db.execute("select id, status, coalesce((to_jsonb(j) ->> 'attempt')::int, 0), progress "
                      "from jobs_job j where id = any(%s)", (job_ids,)).fetchall()
    return {job_id: {"id": job_id, "status": status, "attempt": attempt, "progress": progress_counts(progress)}
            for job_id, status, attempt, progress in rows}


def read_job_details(db, job_ids: list[int]) -> dict[int, dict]:
    """read_jobs plus finished_at (unix seconds), image count, log lines and stored results."""
    jobs = read_jobs(db, job_ids)
    legacy = {}
    for job_id, finished_at, images, logs in db.execute(
            "select j.id, extract(epoch from j.finished_at), (select count(*) from "
            "main_sourceimagecollection_images ci where ci.sourceimagecollection_id = j.source_image_collection_id), "
            "to_jsonb(j) -> 'logs' from jobs_job j where j.id = any(%s)", (job_ids,)):  # a deprecated column
        jobs[job_id].update(finished_at=None if finished_at is None else float(finished_at), images=images, logs=[],
                            results={"rows": 0, "distinct_images": 0, "duplicates": [], "subjects": []})
        legacy[job_id] = logs
    for job_id, level, message in db.execute("select job_id, level, message from jobs_joblog "
                                             "where job_id = any(%s) order by id", (job_ids,)):
        jobs[job_id]["logs"].append({"level": _level(level), "message": message})
    for job_id, job in jobs.items():
        if not job["logs"]:
            job["logs"] = _legacy_logs(legacy[job_id])
    for job_id, image_id, stored in db.execute(
            "select j.id, d.source_image_id, count(distinct d.detection_time) from jobs_job j "
            "join main_sourceimagecollection_images ci on ci.sourceimagecollection_id = j.source_image_collection_id "
            "join main_detection d on d.source_image_id = ci.sourceimage_id "
            "where j.id = any(%s) group by j.id, d.source_image_id order by 1, 2", (job_ids,)):
        results = jobs[job_id]["results"]
        results["rows"] += stored
        results["distinct_images"] += 1
        if stored > 1:
            results["duplicates"].append([jobs[job_id]["attempt"], image_id, stored])
    return jobs
