"""What the fixes need to know about the host app's job model. Antenna implements this once."""

from __future__ import annotations

from typing import Any, Protocol

from fixes.assess import JobCounts


class JobBinding(Protocol):
    model: Any  # the Django model of a job
    running_states: tuple[str, ...]  # states the sweep looks at (e.g. STARTED, RETRY)
    terminal_states: tuple[str, ...]  # states that trigger cleanup (REVOKED, FAILURE, SUCCESS)
    busy_states: tuple[str, ...]  # a Start in one of these is refused (409)

    def is_async(self, job) -> bool: ...

    def counts(self, job) -> JobCounts: ...

    # Optional: `counts_many(self, jobs) -> dict[int, JobCounts | Exception]`, counts() of many jobs at once
    # keyed by job pk (e.g. one Redis pipeline), a job's own error in its place. The sweep uses it when
    # present (an error of the whole call skips every job of that pass), else counts() per job.

    def fail(self, job, reason: str) -> None:
        """Move the job to FAILURE (finished_at set) and log the reason on the job."""

    def log(self, job, message: str, level: str = "INFO") -> None: ...

    def clear_state(self, job_id: int) -> None:
        """Delete the job's progress state outside the database (Redis)."""

    def reset_for_attempt(self, job) -> None:
        """Reset progress and stage params, bump the attempt counter, set PENDING (no save)."""

    def attempt_started(self, job) -> float | None:
        """Unix time the current attempt's stream was created (fencing of stale reply subjects)."""
