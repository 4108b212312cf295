"""Celery tasks of the sandbox: run a job (collect → publish) and process the results of one POST."""

from __future__ import annotations

import json
import logging

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from fixes.django import intake, runtime
from fixes.django import start as fixes_start
from fixes.jetstream import QueueUnavailable
from harness.sandbox.jobs import progress
from harness.sandbox.jobs.models import ImageResult, Job, JobState

log = logging.getLogger(__name__)
RETRY_DELAY = 1.0  # seconds before a result task retries after NATS/Redis trouble


@shared_task(bind=True, ignore_result=True)
def run_job(self, job_id: int, attempt: int) -> None:
    job = Job.objects.get(pk=job_id)
    if fixes_start.superseded(job, attempt):
        log.info("run_job %s attempt %s skipped: job is %s attempt %s", job_id, attempt, job.status, job.attempt)
        return
    images = list(job.images.order_by("id").values_list("id", "url"))
    job.set_stage_params("collect", total_images=len(images))
    job.set_stage_params("process", remaining=len(images))
    job.stage("collect").update(status=JobState.SUCCESS, progress=1.0)
    job.save(update_fields=["progress", "updated_at"])
    job.log(f"Collected {len(images)} images (attempt {attempt})")
    tasks = [(image_id, json.dumps({"id": f"{job_id}-{image_id}", "image_id": str(image_id), "image_url": url,
                                    "job_id": job_id, "attempt": attempt}).encode()) for image_id, url in images]
    try:
        progress.initialise(job_id, [i for i, _ in images])
        stored = fixes_start.publish(job_id, attempt, tasks)
    except QueueUnavailable as exc:
        if self.request.retries >= settings.RUN_JOB_RETRIES:  # Antenna's run_job: log the error, raise
            job.log(f"Job #{job_id} failed: {exc}", level="ERROR")
            raise
        raise self.retry(exc=exc, countdown=RETRY_DELAY, max_retries=settings.RUN_JOB_RETRIES) from exc
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if fixes_start.superseded(job, attempt):
            return
        job.status = JobState.STARTED
        job.started_at = timezone.now()
        job.progress["summary"]["status"] = JobState.STARTED
        job.stage("process")["status"] = JobState.STARTED
        job.save()
    job.log(f"Published {stored} tasks to NATS stream {runtime.layout().stream(job_id)}")


def result_image_id(result: dict) -> int | None:
    raw = result.get("image_id") if "error" in result else (result.get("source_images") or [{}])[0].get("id")
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


@shared_task(bind=True, max_retries=None, ignore_result=True, acks_late=True)
def process_results(self, job_id: int, items: list[list]) -> None:
    """The results of one /result/ POST, as [reply_subject, result] pairs, in Antenna's order per result:
    save, count in Redis, ack NATS — last. One job-row lock, one progress save, one Redis pipeline and
    one flush of acks per batch. NATS, Redis or the database away: retried later."""
    try:
        _handle(job_id, [(subject, result) for subject, result in items])
    except (QueueUnavailable, *_retried_errors()) as exc:
        raise self.retry(exc=exc, countdown=RETRY_DELAY) from exc


@shared_task(bind=True, max_retries=None, ignore_result=True, acks_late=True)
def process_result(self, job_id: int, reply_subject: str, result: dict) -> None:
    """One result (what /result/ queued before it sent one task per POST; kept for tasks still queued)."""
    try:
        _handle(job_id, [(reply_subject, result)])
    except (QueueUnavailable, *_retried_errors()) as exc:
        raise self.retry(exc=exc, countdown=RETRY_DELAY) from exc


def _handle(job_id: int, items: list[tuple[str, dict]]) -> None:
    intake.acknowledge(_process_batch(job_id, items))


def _retried_errors() -> tuple[type[Exception], ...]:
    import redis
    from django.db import InterfaceError, OperationalError

    return (redis.ConnectionError, redis.TimeoutError, OperationalError, InterfaceError)


def _process_batch(job_id: int, items: list[tuple[str, dict]]) -> list[str]:
    """Store and count the batch under the job-row lock; returns the reply subjects to ack (none when the
    results were ignored). The status check, the save and the count share the lock, so no result is stored
    after the job turned final without being counted."""
    done = None
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.status in JobState.final_states():
            log.info("%d result(s) for job %s ignored: job is %s", len(items), job_id, job.status)
            return []
        items = _storable(job, items)
        items, acks = intake.admit(job, items)
        rows = _save(job, items)
        if not rows:
            return acks  # only results naming no image of the job, or repeats
        firsts, counts = progress.record_batch(job_id, [(image_id, failed) for image_id, failed, _ in rows])
        if not counts.exists:  # Antenna's _fail_job (#1162)
            runtime.binding().fail(job, "Job state missing in Redis (flushed or expired); cannot count progress")
            return []
        if job.status in (JobState.STARTED, JobState.RETRY):
            counted = [result for (_, _, result), first in zip(rows, firsts, strict=True) if first]
            done = _update_progress(job, counts, counted)
    if done:
        job.log(f"Completed: {counts.processed} images processed, {counts.failed} failed")
        _cleanup_completed(job_id, job.attempt)
    return acks


def _cleanup_completed(job_id: int, attempt: int) -> None:
    """Antenna deletes a completed job's stream and Redis state (the fixes do it on every terminal state)."""
    if not Job.objects.filter(pk=job_id, attempt=attempt, status=JobState.SUCCESS).exists():
        return  # started again meanwhile: the queue belongs to the new attempt
    try:
        runtime.bridge().call(lambda q: q.delete(job_id))
        progress.clear(job_id)
    except Exception as exc:
        log.warning("cleanup of completed job %s failed: %r", job_id, exc)


def _storable(job: Job, items: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """The items the store can take: one that cannot be stored (the view checks every field, so only a task
    queued by something else gets here) is logged and left unacked, and the rest of its batch is stored."""
    wanted = {image_id for _, result in items if (image_id := _image_or_none(result)) is not None}
    known = set(job.images.filter(pk__in=wanted).values_list("pk", flat=True)) if wanted else set()
    kept = []
    for subject, result in items:
        try:
            if _image_or_none(result) not in known:
                raise ValueError("names no image of the job")
            _row(job, subject, result)
        except Exception as exc:
            log.warning("result for job %s not stored, not acked (%s): %r", job.pk, exc, result)
            continue
        kept.append((subject, result))
    return kept


def _image_or_none(result) -> int | None:
    try:
        return result_image_id(result)
    except Exception:
        return None


def _row(job: Job, subject: str, result: dict) -> ImageResult:
    if not isinstance(subject, str) or len(subject) > ImageResult._meta.get_field("reply_subject").max_length:
        raise ValueError("reply subject too long")
    detections = result.get("detections") or []
    return ImageResult(job=job, attempt=job.attempt, image_id=result_image_id(result), reply_subject=subject,
                       detections=len(detections),
                       classifications=sum(len(d.get("classifications") or []) for d in detections),
                       error=str(result.get("error", "")) if "error" in result else "")


def _save(job: Job, items: list[tuple[str, dict]]) -> list[tuple[int, bool, dict]]:
    """Store the (storable) results: (image_id, failed, result) for each, in order."""
    ImageResult.objects.bulk_create([_row(job, subject, result) for subject, result in items])
    return [(result_image_id(result), "error" in result, result) for _, result in items]


def _update_progress(job: Job, counts: progress.Counts, first_results: list[dict]) -> bool:
    """Write the Redis counts (read under the row lock: the last writer sees the final counts) and the
    detections of results counted for the first time into the job; True when this completed the job."""
    job.set_stage_params("process", processed=counts.processed, remaining=counts.remaining, failed=counts.failed)
    totals = {p["key"]: p["value"] for p in job.stage("results")["params"]}
    for result in first_results:
        detections = result.get("detections") or []
        totals["detections"] += len(detections)
        totals["classifications"] += sum(len(d.get("classifications") or []) for d in detections)
        totals["captures"] += 0 if "error" in result else 1
    job.set_stage_params("results", **totals)
    done = bool(counts.total) and counts.remaining == 0
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
    return done
