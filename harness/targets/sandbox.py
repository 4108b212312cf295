"""The sandbox's database, read into the plain dicts the checkers judge (the `Records` of harness/targets/base.py)."""

from __future__ import annotations

from harness.targets.base import progress_counts

PUBLISHED = "Published "  # the job-log line a Start writes once its tasks are in the stream


# --- PostgreSQL ------------------------------------------------------------------------------------------


def read_jobs(db, job_ids: list[int]) -> dict[int, dict]:
    """Status, attempt and progress of each job (the sampler's cheap read)."""
    rows = db.execute("select id, status, attempt, progress from jobs_job where id = any(%s)", (job_ids,)).fetchall()
    return {job_id: {"id": job_id, "status": status, "attempt": attempt, "progress": progress_counts(progress)}
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
