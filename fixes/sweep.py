"""The periodic sweep: `run_once` does the I/O of a pass through two small interfaces around fixes.plan's pure
decisions and returns counts (the shape of River's JobRescuer and Oban's Lifeline). It needs no worker: it is
what notices a dead job nobody polls."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from fixes.config import FixesConfig
from fixes.layout import QueueLayout
from fixes.model import JobCounts, QueueSnapshot
from fixes.plan import Action, Plan, Record, plan, plan_waiting

log = logging.getLogger(__name__)


def _confirm(decided: Plan, store: SweepStore, queue: QueueReader, jobs: Mapping[int, int], layout: QueueLayout,
             config: FixesConfig, sleep: Callable[[float], None], wall: Callable[[], float]) -> None:
    """The confirming look at the jobs first sighted in this pass, judged against that first look; merged into
    `decided` (its records, actions, skips; an outage during it marks those jobs' records)."""
    sleep(config.confirm_after)
    again = {job_id: jobs[job_id] for job_id in decided.sighted}
    ids = list(again)
    second = plan(again, _snapshots(queue, again, wall), store.counts(ids),
                  {job_id: decided.records[job_id] for job_id in ids}, layout, config)
    decided.records.update(second.records)
    decided.actions += second.actions
    decided.skipped.update(second.skipped)
    decided.unreachable = decided.unreachable or second.unreachable


def _snapshots(queue: QueueReader, jobs: Mapping[int, int],
               wall: Callable[[], float]) -> dict[int, QueueSnapshot | Exception]:
    """The queue's looks; a reader that raises (a disconnected bridge fails fast) counts as NATS not
    answering, so the outage is remembered and the watch clock restarts after it."""
    try:
        return queue.snapshots(jobs)
    except Exception as exc:
        log.warning("sweep: NATS not answering: %r", exc)
        now = wall()
        said = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return {job_id: QueueSnapshot(taken_at=now, job_id=job_id, reachable=False, unavailable=said) for job_id in jobs}


class SweepStore(Protocol):
    """The host's side of a pass (fixes.django.store.OrmStore implements it with the ORM)."""

    def running(self) -> dict[int, int]: ...  # {job_id: attempt} of running async jobs
    def previous(self, job_ids: list[int]) -> dict[int, Record]: ...
    def counts(self, job_ids: list[int]) -> dict[int, JobCounts | Exception]: ...
    def save(self, records: dict[int, Record], running: list[int]) -> None: ...  # and forget the others
    def fail(self, action: Action) -> bool: ...  # under the job's lock, only if still running in that attempt
    def warn(self, action: Action) -> None: ...
    def complete(self, action: Action) -> bool: ...  # like fail, through the binding's optional complete()
    def retry_cleanups(self) -> int: ...
    # Optional (getattr): jobs held up before NATS, and what to do with them; each acts only if the job is still
    # in that state and attempt
    #   def waiting(self) -> dict[int, Waiting]: ...
    #   def rerun(self, action: Action) -> bool: ...  # enqueue the attempt's run again
    #   def fail_start(self, action: Action) -> bool: ...
    #   def end_cancel(self, action: Action) -> bool: ...


class QueueReader(Protocol):
    def snapshots(self, jobs: dict[int, int]) -> dict[int, QueueSnapshot | Exception]: ...


@dataclass
class SweepResult:
    looked_at: int = 0
    failed: list[int] = field(default_factory=list)
    warned: list[int] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)
    rerun: list[int] = field(default_factory=list)  # held-up Starts whose run was enqueued again
    ended: list[int] = field(default_factory=list)  # held-up Starts failed, stuck cancels ended
    skipped: list[int] = field(default_factory=list)  # jobs whose look or action raised: logged, the others go on
    unreachable: bool = False
    cleanups_retried: int = 0
    seconds: float = 0.0


def run_once(store: SweepStore, queue: QueueReader, layout: QueueLayout, config: FixesConfig,
             clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
             sleep: Callable[[float], None] = time.sleep) -> SweepResult:
    """One pass over running async jobs, and over the jobs held up before NATS (acted on after start_timeout).

    A condition must hold on two consecutive looks before it is acted on: a job first seen dead, stuck or lost
    is looked at again config.confirm_after seconds later in the same pass (not a whole interval later)."""
    began, result = clock(), SweepResult()
    if not config.sweep:
        return result
    jobs = store.running()
    held = store.waiting() if hasattr(store, "waiting") else {}
    ids = list(jobs)
    snapshots = _snapshots(queue, jobs, wall) if jobs else {}
    counts = store.counts(ids) if ids else {}
    previous = store.previous(ids + list(held))
    decided = plan(jobs, snapshots, counts, previous, layout, config)
    if decided.sighted and not decided.unreachable and config.confirm_after > 0:
        _confirm(decided, store, queue, jobs, layout, config, sleep, wall)
    waited = plan_waiting(held, previous, config, wall())
    result.unreachable, result.looked_at, result.skipped = decided.unreachable, decided.looked_at, list(decided.skipped)
    result.looked_at += waited.looked_at
    for job_id, why in decided.skipped.items():
        log.warning("sweep: job %s skipped: %s", job_id, why)
    store.save({**decided.records, **waited.records}, ids + list(held))
    done = {"fail": result.failed, "complete": result.completed, "rerun": result.rerun, "fail_start": result.ended, "end_cancel": result.ended}
    for action in decided.actions + waited.actions:
        try:
            if action.kind == "warn":
                store.warn(action)
                result.warned.append(action.job_id)
            elif getattr(store, action.kind)(action):
                done[action.kind].append(action.job_id)
        except Exception as exc:
            result.skipped.append(action.job_id)
            log.warning("sweep: acting on job %s raised: %r", action.job_id, exc, exc_info=exc)
    if undo := {j: r for j, r in waited.unless_done.items() if j in result.skipped}:
        store.save({**decided.records, **waited.records, **undo}, ids + list(held))
    if not decided.unreachable:
        result.cleanups_retried = store.retry_cleanups()
    result.seconds = clock() - began
    if result.failed or result.warned or result.completed or result.rerun or result.ended or result.cleanups_retried \
            or result.skipped:
        log.warning("sweep: %s", result)
    return result
