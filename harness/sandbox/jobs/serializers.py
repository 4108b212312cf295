from harness.sandbox.jobs.models import Job

LOG_LINES = 50


def job_summary(job: Job) -> dict:
    return {
        "id": job.pk,
        "name": job.name,
        "status": job.status,
        "dispatch_mode": job.dispatch_mode,
        "pipeline_slug": job.pipeline.slug,
        "attempt": job.attempt,
        "progress": job.progress,
        "started_at": job.started_at and job.started_at.isoformat(),
        "finished_at": job.finished_at and job.finished_at.isoformat(),
    }


def job_detail(job: Job, logs: bool = False) -> dict:
    data = job_summary(job)
    data["image_count"] = job.images.count()
    if logs:
        rows = list(job.logs.order_by("-id")[:LOG_LINES])[::-1]
        data["logs"] = [{"level": r.level, "message": r.message, "created_at": r.created_at.isoformat()} for r in rows]
    return data
