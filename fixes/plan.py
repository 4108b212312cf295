"""The periodic sweep: a pure plan (looks + what the last pass remembered + config -> actions) and `run_once`,
which does the I/O through two small interfaces and returns counts (the shape of River's JobRescuer and
Oban's Lifeline). It needs no worker: it is what notices a dead job nobody polls."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from fixes.assess import assess, watched
from fixes.config import FixesConfig
from fixes.layout import QueueLayout
from fixes.model import ACTIONABLE, Assessment, Condition, JobCounts, Observation, QueueSnapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Record:
    """What the sweep remembers about a job from its last pass."""

    attempt: int
    observation: Observation | None = None
    watch_since: float | None = None
    outage: bool = False  # NATS did not answer on the last pass
    warned: bool = False  # a stuck job was reported (stuck_action="warn") and is still stuck

    def to_dict(self) -> dict:
        data = {"attempt": self.attempt, "watch_since": self.watch_since, "outage": self.outage, "warned": self.warned}
        return {**data, **(self.observation.to_dict() if self.observation else {})}

    @classmethod
    def from_dict(cls, data: dict) -> Record:
        seen = Observation.from_dict(data) if "snapshot" in data else None
        return cls(data["attempt"], seen, data.get("watch_since"), data.get("outage", False), data.get("warned", False))


@dataclass(frozen=True)
class Action:
    job_id: int
    attempt: int
    kind: str  # "fail" | "warn" | "complete"
    assessment: Assessment


@dataclass
class Plan:
    records: dict[int, Record] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)  # job -> why it could not be judged
    unreachable: bool = False  # NATS stopped answering during the pass: nobody after that is judged
    looked_at: int = 0


def plan(jobs: Mapping[int, int], snapshots: Mapping[int, QueueSnapshot | Exception],
         counts: Mapping[int, JobCounts | Exception], previous: Mapping[int, Record],
         layout: QueueLayout, config: FixesConfig) -> Plan:
    """Judge running jobs ({job_id: attempt}) in order, up to the first one NATS did not answer for."""
    out = Plan()
    for job_id, attempt in jobs.items():
        out.looked_at += 1
        snapshot, count = snapshots.get(job_id), counts.get(job_id)
        if isinstance(snapshot, QueueSnapshot) and not snapshot.reachable:
            out.unreachable = True
            break
        if not isinstance(snapshot, QueueSnapshot) or not isinstance(count, JobCounts):
            out.skipped[job_id] = repr(count if isinstance(snapshot, QueueSnapshot) else snapshot)
            continue
        before = previous.get(job_id)
        if before is not None and before.attempt != attempt:
            before = None  # a look at an earlier attempt proves nothing about this one
        current = Observation(snapshot, count)
        judged = assess(current, layout, config, before.observation if before else None,
                        watch_since=before.watch_since if before else None,
                        after_outage=bool(before and before.outage))
        kind = _action(judged, config, warned=bool(before and before.warned))
        if kind:
            out.actions.append(Action(job_id, attempt, kind, judged))
        stuck = judged.condition is Condition.STUCK_NO_FETCHER
        out.records[job_id] = Record(attempt, watched(current, judged.watch_since), judged.watch_since,
                                     warned=stuck and (kind == "warn" or bool(before and before.warned)))
    if out.unreachable:  # keep every running job's last look, marked: the watch clock restarts after it
        out.records = {job_id: _outage(out.records.get(job_id) or previous.get(job_id), attempt)
                       for job_id, attempt in jobs.items()}
    return out


def _action(judged: Assessment, config: FixesConfig, warned: bool) -> str | None:
    if judged.condition is Condition.FINISHED and judged.confirmed:
        return "complete"  # every task has a result but the job was left running (e.g. a lost last save)
    if not judged.act or judged.condition not in ACTIONABLE:
        return None
    if judged.condition is Condition.STUCK_NO_FETCHER and config.stuck_action == "warn":
        return None if warned else "warn"
    return "fail"


def _outage(record: Record | None, attempt: int) -> Record:
    if record is None or record.attempt != attempt:
        return Record(attempt, outage=True)
    return Record(attempt, record.observation, record.watch_since, outage=True, warned=record.warned)


def _snapshots(queue: QueueReader, jobs: dict[int, int]) -> dict[int, QueueSnapshot | Exception]:
    """The queue's looks; a reader that raises (a disconnected bridge fails fast) counts as NATS not
    answering, so the outage is remembered and the watch clock restarts after it."""
    try:
        return queue.snapshots(jobs)
    except Exception as exc:
        log.warning("sweep: NATS not answering: %r", exc)
        now = time.time()
        return {job_id: QueueSnapshot(taken_at=now, job_id=job_id, reachable=False) for job_id in jobs}


class SweepStore(Protocol):
    """The host's side of a pass (fixes.django.reaper.OrmStore implements it with the ORM)."""

    def running(self) -> dict[int, int]: ...  # {job_id: attempt} of running async jobs
    def previous(self, job_ids: list[int]) -> dict[int, Record]: ...
    def counts(self, job_ids: list[int]) -> dict[int, JobCounts | Exception]: ...
    def save(self, records: dict[int, Record], running: list[int]) -> None: ...  # and forget the others
    def fail(self, action: Action) -> bool: ...  # under the job's lock, only if still running in that attempt
    def warn(self, action: Action) -> None: ...
    def complete(self, action: Action) -> bool: ...  # like fail, through the binding's optional complete()
    def retry_cleanups(self) -> int: ...


class QueueReader(Protocol):
    def snapshots(self, jobs: dict[int, int]) -> dict[int, QueueSnapshot | Exception]: ...


@dataclass
class SweepResult:
    looked_at: int = 0
    failed: list[int] = field(default_factory=list)
    warned: list[int] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # jobs whose look or action raised: logged, the others go on
    unreachable: bool = False
    cleanups_retried: int = 0
    seconds: float = 0.0


def run_once(store: SweepStore, queue: QueueReader, layout: QueueLayout, config: FixesConfig,
             clock: Callable[[], float] = time.monotonic) -> SweepResult:
    """One pass over running async jobs. A condition must hold on two consecutive passes before it is acted on."""
    began, result = clock(), SweepResult()
    if not config.sweep:
        return result
    jobs = store.running()
    ids = list(jobs)
    snapshots = _snapshots(queue, jobs) if jobs else {}
    counts = store.counts(ids) if ids else {}
    decided = plan(jobs, snapshots, counts, store.previous(ids), layout, config)
    result.unreachable, result.looked_at, result.skipped = decided.unreachable, decided.looked_at, list(decided.skipped)
    for job_id, why in decided.skipped.items():
        log.warning("sweep: job %s skipped: %s", job_id, why)
    store.save(decided.records, ids)
    for action in decided.actions:
        try:
            if action.kind == "warn":
                store.warn(action)
                result.warned.append(action.job_id)
            elif action.kind == "complete":
                if store.complete(action):
                    result.completed.append(action.job_id)
            elif store.fail(action):
                result.failed.append(action.job_id)
        except Exception as exc:
            result.skipped.append(action.job_id)
            log.warning("sweep: acting on job %s raised: %r", action.job_id, exc, exc_info=exc)
    if not decided.unreachable:
        result.cleanups_retried = store.retry_cleanups()
    result.seconds = clock() - began
    if result.failed or result.warned or result.completed or result.cleanups_retried or result.skipped:
        log.warning("sweep: %s", result)
    return result
