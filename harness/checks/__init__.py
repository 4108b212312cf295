"""Invariants as pure functions of (timeline, final snapshot) → Verdict, plus compose.

`snapshot.collect` and `sampler.Sampler` do the reading; nothing else in this package does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from harness.checks.api import no_server_errors, refusals_name_the_field, unauthorized_rejected
from harness.checks.duplicates import (
    no_duplicate_results,
    no_duplicate_tasks,
    no_early_redelivery,
    no_replayed_tasks,
    no_stale_results,
)
from harness.checks.liveness import (
    LOSS_FAULTS,
    UNANSWERED_FAULTS,
    failure_has_reason,
    lost_tasks_named,
    not_failed_with_results_in_hand,
    services_alive,
    terminal_within_bound,
    unanswered_jobs_failed,
)
from harness.checks.queue_state import no_leftover_queue, progress_consistent, results_counted_once
from harness.checks.verdict import MAX_SAMPLES, Checker, Verdict, check_safe, compose
from harness.history import Op

CHECKS: dict[str, Checker] = {
    "terminal_within_bound": terminal_within_bound,
    "failure_has_reason": failure_has_reason,
    "lost_tasks_named": lost_tasks_named,
    "unanswered_jobs_failed": unanswered_jobs_failed,
    "not_failed_with_results_in_hand": not_failed_with_results_in_hand,
    "no_duplicate_tasks": no_duplicate_tasks,
    "no_duplicate_results": no_duplicate_results,
    "no_stale_results": no_stale_results,
    "no_early_redelivery": no_early_redelivery,
    "no_replayed_tasks": no_replayed_tasks,
    "no_leftover_queue": no_leftover_queue,
    "results_counted_once": results_counted_once,
    "progress_consistent": progress_consistent,
    "no_server_errors": no_server_errors,
    "unauthorized_rejected": unauthorized_rejected,
    "refusals_name_the_field": refusals_name_the_field,
    "services_alive": services_alive,
}


# Checks of what only some scenarios do, with the call whose invoke says the run set out to do it (a fault: its verb)
EXERCISED_BY = {"unauthorized_rejected": "unauthorized", "no_early_redelivery": "post", "refusals_name_the_field": "fuzz",
                "lost_tasks_named": LOSS_FAULTS, "unanswered_jobs_failed": UNANSWERED_FAULTS}


def judge(history: Sequence[Op], snapshot: dict, names: Iterable[str] | None = None) -> list[Verdict]:
    """Run the named checkers (all by default); a crashing one answers unknown."""
    return [check_safe(name, CHECKS[name], history, snapshot) for name in (names or CHECKS)]


def applicable(history: Sequence[Op]) -> list[str]:
    """The checkers that judge a run: all of them, but one of EXERCISED_BY only if the run invoked its call.

    Like a Jepsen test choosing its checkers: a run that never sends a request without a token is not
    judged on how such requests are answered. A run that sent some but got no answer is: unknown.
    """
    invoked = {op.f for op in history if op.type == "invoke"}
    invoked |= {op.value.get("fault") for op in history if op.f == "inject" and isinstance(op.value, dict)}
    return [name for name in CHECKS if name not in EXERCISED_BY or _exercised(EXERCISED_BY[name], invoked)]


def _exercised(calls: str | tuple[str, ...], invoked: set) -> bool:
    return any(call in invoked for call in ((calls,) if isinstance(calls, str) else calls))


__all__ = ["CHECKS", "EXERCISED_BY", "MAX_SAMPLES", "Checker", "Verdict", "applicable", "check_safe", "compose",
           "judge"]
