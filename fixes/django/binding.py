"""The seam: what the fixes need to know about the host app's jobs. A host implements this class once and
names it in settings.FIXES_JOB_BINDING; fixes/ never reads the host's objects any other way."""

from __future__ import annotations

from typing import Any, Protocol

from fixes.model import JobCounts


class JobBinding(Protocol):
    model: Any  # the Django model of a job
    running_states: tuple[str, ...]  # states the sweep looks at (e.g. STARTED, RETRY)
    terminal_states: tuple[str, ...]  # states that trigger cleanup (REVOKED, FAILURE, SUCCESS)
    busy_states: tuple[str, ...]  # a Start in one of these is refused (409)
    startable_states: tuple[str, ...]  # a queued run of the current attempt may still publish (PENDING, RETRY)

    def is_async(self, job) -> bool:
        """The job's tasks go through NATS (Antenna: dispatch_mode == async_api)."""

    def attempt(self, job) -> int:
        """The job's epoch: bumped by every Start/Retry (begin_attempt), never reset."""

    def begin_attempt(self, job, attempt: int, status: str) -> None:
        """Reset progress for a new attempt, store `attempt` as the job's epoch, set `status` (no save)."""

    def counts(self, job) -> JobCounts:
        """expected/processed/failed and a sample of unprocessed image ids (results_queued is the fixes' own).

        Optional: `counts_many(self, jobs) -> {job pk: JobCounts | Exception}` for many jobs at once (the
        sweep uses it when present: e.g. one Redis pipeline)."""

    def image_of_task(self, payload: bytes) -> str | None:
        """The image a published task payload is for (names dead letters in the job's log)."""

    def image_of_result(self, result: dict) -> str | None:
        """The image a posted result is for (None: it names none)."""

    def fail(self, job, reason: str) -> None:
        """Move the job to FAILURE (finished_at set), save, and log the reason on the job."""

    def log(self, job, message: str, level: str = "INFO") -> None: ...

    # Optional: `complete(self, job) -> None` moves a job whose every task has a result to SUCCESS
    # (finished_at set) and saves; the sweep calls it under the row lock, after two looks. Without it the
    # sweep only logs a warning on the job.

    def clear_state(self, job_id: int) -> None:
        """Delete the job's progress state outside the database (Redis)."""
