"""Celery tasks of the sandbox: run a job (collect → publish) and process one posted result."""

from __future__ import annotations

import json
import logging

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from fixes.django import runtime
from fixes.django.start import publish_attempt
from fixes.queue import QueueUnavailable
from harness.sandbox.jobs import progress
from harness.sandbox.jobs.models import ImageResult, Job, JobState

log = logging.getLogger(__name__)
RETRY_DELAY = 1.0  # seconds before a result task retries after NATS/Redis trouble


@shared_task(bind=True, max_retries=30, ignore_result=True)
def run_job(self, job_id: int, attempt: int) -> None:
    job = Job.objects.get(pk=job_id)
    fenced = runtime.config().idempotent_start  # Antenna runs every queued Start, whatever happened since
    if fenced and not _current(job, attempt):
        log.info("run_job %s attempt %s skipped: job is %s attempt %s", job_id, attempt, job.status, job.attempt)
        return
    images = list(job.images.order_by("id").values_list("id", "url"))
    job.set_stage_params("collect", total_images=len(images))
    job.set_stage_params("process", remaining=len(images))
    job.stage("collect").update(status=JobState.SUCCESS, progress=1.0)
    job.save(update_fields=["progress", "updated_at"])
    job.log(f"Collected {len(images)} images (attempt {attempt})")
    layout = runtime.layout()
    tasks = [
        (
            layout.msg_id(job_id, attempt, image_id) if runtime.config().idempotent_start else None,
            json.dumps({"id": f"{job_id}-{image_id}", "image_id": str(image_id), "image_url": url,
                        "job_id": job_id, "attempt": attempt}).encode(),
        )
        for image_id, url in images
    ]
    try:
        progress.initialise(job_id, [i for i, _ in images])
        if runtime.config().idempotent_start:
            created, stored = publish_attempt(job_id, attempt, tasks)
        else:  # Antenna: create what is missing, publish on top of whatever is there
            created = runtime.bridge().call(lambda q: q.ensure(job_id))
            stored = runtime.bridge().call(lambda q: q.publish(job_id, tasks), timeout=max(30.0, len(tasks) / 1000))
    except QueueUnavailable as exc:
        raise self.retry(exc=exc, countdown=RETRY_DELAY) from exc
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if fenced and not _current(job, attempt):
            return
        job.status = JobState.STARTED
        job.queue_created = created
        job.started_at = timezone.now()
        job.progress["summary"]["status"] = JobState.STARTED
        job.stage("process")["status"] = JobState.STARTED
        job.save()
    job.log(f"Published {stored} tasks to NATS stream {layout.stream(job_id)}")


def _current(job: Job, attempt: int) -> bool:
    return job.attempt == attempt and job.status in (JobState.PENDING, JobState.RETRY)


def result_image_id(result: dict) -> int | None:
    raw = result.get("image_id") if "error" in result else (result.get("source_images") or [{}])[0].get("id")
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


@shared_task(bind=True, max_retries=None, ignore_result=True, acks_late=True)
def process_result(self, job_id: int, reply_subject: str, result: dict) -> None:
    """Antenna's order: save the result, update the Redis progress, then ack NATS — last."""
    image_id, failed = result_image_id(result), "error" in result
    try:
        _process(job_id, image_id, reply_subject, result, failed)
        if image_id is not None:
            progress.result_stored(job_id, image_id)
    except (QueueUnavailable, *_redis_errors()) as exc:
        raise self.retry(exc=exc, countdown=RETRY_DELAY) from exc


def _process(job_id: int, image_id: int | None, reply_subject: str, result: dict, failed: bool) -> None:
    job = Job.objects.get(pk=job_id)
    if job.status in JobState.final_states():
        log.info("result for job %s ignored: job is %s", job_id, job.status)
        return
    first = _save(job, image_id, reply_subject, result, failed)
    if first is not None and not progress.counts(job_id).exists:  # Antenna's _fail_job (#1162)
        _fail(job_id, "Job state missing in Redis (flushed or expired); cannot count progress")
        return
    if first:
        _update_progress(job_id, result, failed)
    runtime.bridge().call(lambda q: q.ack(reply_subject))


def _redis_errors() -> tuple[type[Exception], ...]:
    import redis

    return (redis.ConnectionError, redis.TimeoutError)


def _save(job: Job, image_id: int | None, reply_subject: str, result: dict, failed: bool) -> bool | None:
    """Store the result; returns whether it was the first for its image (None: unknown image)."""
    if image_id is None or not job.images.filter(pk=image_id).exists():
        log.warning("result for job %s names no image of the job: %r", job.pk, result)
        return None
    dedupe = runtime.config().fencing
    if not (dedupe and ImageResult.objects.filter(job=job, attempt=job.attempt, image_id=image_id).exists()):
        detections = result.get("detections") or []
        ImageResult.objects.create(
            job=job, attempt=job.attempt, image_id=image_id, reply_subject=reply_subject,
            detections=len(detections),
            classifications=sum(len(d.get("classifications") or []) for d in detections),
            error=str(result.get("error", "")) if failed else "",
        )
    return progress.record(job.pk, image_id, failed)


def _update_progress(job_id: int, result: dict, failed: bool) -> None:
    detections = result.get("detections") or []
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        # a concurrent result may have completed the job already: still count this one
        if job.status not in (JobState.STARTED, JobState.RETRY, JobState.SUCCESS):
            return
        counts = progress.counts(job_id)  # read under the row lock: the last writer sees the final counts
        job.set_stage_params("process", processed=counts.processed, remaining=counts.remaining, failed=counts.failed)
        results = {p["key"]: p["value"] for p in job.stage("results")["params"]}
        job.set_stage_params(
            "results",
            detections=results["detections"] + len(detections),
            classifications=results["classifications"] + sum(len(d.get("classifications") or []) for d in detections),
            captures=results["captures"] + (0 if failed else 1),
        )
        done = bool(counts.total) and counts.remaining == 0 and job.status != JobState.SUCCESS
        fraction = counts.processed / counts.total if counts.total else 1.0
        job.stage("process")["progress"] = fraction
        job.progress["summary"]["progress"] = fraction
        if done:
            job.status = JobState.SUCCESS
            job.finished_at = timezone.now()
            job.progress["summary"]["status"] = JobState.SUCCESS
            for stage in job.progress["stages"]:
                stage["status"] = JobState.SUCCESS
        job.save()
    if done:
        job.log(f"Completed: {counts.processed} images processed, {counts.failed} failed")
        if not runtime.config().cleanup_on_terminal:
            # Antenna already cleans up on completion; the fixes extend this to REVOKED/FAILURE
            from fixes.django.cleanup import cleanup_job

            cleanup_job(job_id, reason="completed")


def _fail(job_id: int, reason: str) -> None:
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.status in JobState.final_states():
            return
        runtime.binding().fail(job, reason)
