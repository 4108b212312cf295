"""How the fixes see the sandbox's Job model (Antenna would implement the same class once)."""

import dataclasses
import json

from django.db.models import Count, Q
from django.utils import timezone

from fixes.model import JobCounts
from harness.sandbox.jobs import progress
from harness.sandbox.jobs.models import DispatchMode, ImageResult, Job, JobState, empty_progress


class SandboxJobs:
    model = Job
    running_states = (JobState.STARTED, JobState.RETRY)
    terminal_states = (JobState.REVOKED, JobState.FAILURE, JobState.SUCCESS)
    busy_states = (JobState.PENDING, JobState.STARTED, JobState.RETRY, JobState.CANCELING)
    startable_states = (JobState.PENDING, JobState.RETRY)

    def is_async(self, job) -> bool:
        return job.dispatch_mode == DispatchMode.ASYNC_API

    def attempt(self, job) -> int:
        return job.attempt

    def begin_attempt(self, job, attempt: int, status: str) -> None:
        job.progress = empty_progress()
        job.attempt = attempt
        job.status = status
        job.started_at = job.finished_at = None

    def image_of_task(self, payload: bytes) -> str | None:
        return str(json.loads(payload)["image_id"])

    def image_of_result(self, result: dict) -> str | None:
        from harness.sandbox.jobs.tasks import result_image_id

        image = result_image_id(result)
        return None if image is None else str(image)

    def counts(self, job) -> JobCounts:
        found = _counts_of([job])[job.pk]
        if isinstance(found, Exception):
            raise found
        return found

    def counts_many(self, jobs) -> dict[int, JobCounts | Exception]:
        """counts() of many jobs in one Redis pipeline (the sweep's batched path)."""
        return _counts_of(jobs)

    def fail(self, job, reason: str) -> None:
        _end(job, JobState.FAILURE, reason, "ERROR")

    def complete(self, job) -> None:
        counts = self.counts(job)
        job.set_stage_params("process", processed=counts.processed, remaining=0, failed=counts.failed)
        job.status = JobState.SUCCESS
        job.finished_at = timezone.now()
        job.progress["summary"].update(status=JobState.SUCCESS, progress=1.0)
        for stage in job.progress["stages"]:
            stage.update(status=JobState.SUCCESS, progress=1.0)
        job.save()
        job.log(f"Completed by the reaper: {counts.processed} images processed, {counts.failed} failed")

    def rerun(self, job) -> None:
        """Optional: enqueue the run of the job's current attempt again (the sweep found it lost)."""
        from harness.sandbox.jobs.tasks import run_job

        job.task_id = run_job.apply_async(args=[job.pk, job.attempt]).id
        job.save(update_fields=["task_id"])

    def revoke(self, job, reason: str) -> None:
        """Optional: end a cancel that never finished the way the cancel would have: REVOKED."""
        _end(job, JobState.REVOKED, reason, "WARNING")

    def log(self, job, message: str, level: str = "INFO") -> None:
        job.log(message, level=level)

    def clear_state(self, job_id: int) -> None:
        progress.clear(job_id)


def _end(job, status: str, reason: str, level: str) -> None:
    job.status = status
    job.finished_at = timezone.now()
    job.progress["summary"]["status"] = status
    job.save()
    job.log(reason, level=level)


def _recorded(job) -> JobCounts:
    """Redis state lost: fall back to what the database recorded."""
    total = job.stage_param("collect", "total_images")
    return JobCounts(expected=total, processed=job.stage_param("process", "processed"),
                     failed=job.stage_param("process", "failed"), state_lost=True)


def _counts_of(jobs) -> dict[int, JobCounts | Exception]:
    found = progress.progress_many([job.pk for job in jobs], limit=50)
    stored = _stored(jobs)
    out: dict[int, JobCounts | Exception] = {}
    for job in jobs:
        p = found[job.pk]
        c = p.counts
        try:
            counts = JobCounts(expected=c.total, processed=c.processed, failed=c.failed,
                               unprocessed_image_ids=tuple(p.pending_image_ids)) if c.exists else _recorded(job)
            out[job.pk] = _at_least_stored(job, counts, stored.get(job.pk))
        except Exception as exc:  # one job's bad record must not cost the others their look
            out[job.pk] = exc
    return out


def _stored(jobs) -> dict[int, dict]:
    """Images with a stored result in each job's current attempt: {job pk: {"processed": n, "failed": n}}."""
    attempts = {job.pk: job.attempt for job in jobs}
    rows = (ImageResult.objects.filter(job_id__in=list(attempts)).values("job_id", "attempt")
            .annotate(processed=Count("image_id", distinct=True),
                      failed=Count("image_id", distinct=True, filter=~Q(error=""))))
    return {r["job_id"]: r for r in rows if attempts[r["job_id"]] == r["attempt"]}


def _at_least_stored(job, counts: JobCounts, stored: dict | None) -> JobCounts:
    """The database rows over Redis when Redis counts fewer (a restart restored an older snapshot): the
    stored results are the truth, and their images can never be handed out again (their tasks were acked).
    Redis may count more for a moment: it is written before the rows' transaction commits."""
    if not stored or stored["processed"] <= counts.processed:
        return counts
    done = {str(i) for i in ImageResult.objects.filter(job=job, attempt=job.attempt,
                                                       image_id__in=counts.unprocessed_image_ids or [])
            .values_list("image_id", flat=True)}
    return dataclasses.replace(counts, processed=stored["processed"], failed=max(counts.failed, stored["failed"]),
                               unprocessed_image_ids=tuple(i for i in counts.unprocessed_image_ids if i not in done))
