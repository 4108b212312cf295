"""The periodic sweep: a pure plan (looks + what the last pass remembered + config -> actions) and `run_once`,
which does the I/O through two small interfaces and returns counts (the shape of River's JobRescuer and
Oban's Lifeline). It needs no worker: it is what notices a dead job nobody polls."""

from __future__ import annotations

import dataclasses
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
    waiting: str | None = None  # "start" | "cancel": the job was held up before NATS (see Waiting)
    waiting_since: float | None = None  # unix seconds: when the attempt began, or the sweep first saw the cancel
    reruns: int = 0  # how often the sweep enqueued this attempt's run again
    rerun_at: float | None = None  # unix seconds of the last of them

    def to_dict(self) -> dict:
        data = {"attempt": self.attempt, "watch_since": self.watch_since, "outage": self.outage, "warned": self.warned}
        if self.waiting:
            data.update(waiting=self.waiting, waiting_since=self.waiting_since, reruns=self.reruns,
                        rerun_at=self.rerun_at)
        return {**data, **(self.observation.to_dict() if self.observation else {})}

    @classmethod
    def from_dict(cls, data: dict) -> Record:
        seen = Observation.from_dict(data) if "snapshot" in data else None
        return cls(data["attempt"], seen, data.get("watch_since"), data.get("outage", False), data.get("warned", False),
                   data.get("waiting"), data.get("waiting_since"), data.get("reruns", 0), data.get("rerun_at"))


@dataclass(frozen=True)
class Waiting:
    """A job held up before NATS has anything to show: its Start's run has not published ("start": PENDING),
    or its cancel never ended ("cancel": CANCELING, e.g. the revoke hit a broker outage)."""

    attempt: int
    kind: str  # "start" | "cancel"
    since: float | None = None  # unix seconds the attempt began (the app's AttemptRecord); None: first sight


@dataclass(frozen=True)
class Action:
    job_id: int
    attempt: int
    kind: str  # a running job: "fail" | "warn" | "complete"; a waiting one: "rerun" | "fail_start" | "end_cancel"
    assessment: Assessment | None = None
    note: str = ""  # a waiting job's reason

    @property
    def reason(self) -> str:
        return self.assessment.reason if self.assessment is not None else self.note


@dataclass
class Plan:
    records: dict[int, Record] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)  # job -> why it could not be judged
    unreachable: bool = False  # NATS stopped answering during the pass: nobody after that is judged
    looked_at: int = 0
    unless_done: dict[int, Record] = field(default_factory=dict)  # the record to keep if the job's rerun fails
    sighted: list[int] = field(default_factory=list)  # first seen dead, stuck, lost or finished: look again


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
        if not judged.confirmed and (judged.condition in ACTIONABLE or judged.condition is Condition.FINISHED):
            out.sighted.append(job_id)
        if kind:
            out.actions.append(Action(job_id, attempt, kind, judged))
        stuck = judged.condition is Condition.STUCK_NO_FETCHER
        out.records[job_id] = Record(attempt, watched(current, judged.watch_since), judged.watch_since,
                                     warned=stuck and (kind == "warn" or bool(before and before.warned)))
    if out.unreachable:  # keep every running job's last look, marked: the watch clock restarts after it
        out.records = {job_id: _outage(out.records.get(job_id) or previous.get(job_id), attempt)
                       for job_id, attempt in jobs.items()}
    return out


START_RERUNS = 1  # a lost run is enqueued again once; when that one does not publish either, the job fails


def start_overdue(began_at: float | None, published: bool, now: float, config: FixesConfig) -> bool:
    """A Start whose run published nothing within start_timeout: a new Start may take the job over."""
    return began_at is not None and not published and now - began_at >= config.start_timeout


def plan_waiting(waiting: Mapping[int, Waiting], previous: Mapping[int, Record], config: FixesConfig,
                 now: float) -> Plan:
    """Jobs held up before NATS: after start_timeout a lost run is enqueued again (START_RERUNS times), then the
    job is ended with its reason; a stuck cancel is ended."""
    out = Plan()
    for job_id, held in waiting.items():
        out.looked_at += 1
        before = previous.get(job_id)
        if before is not None and (before.attempt != held.attempt or before.waiting != held.kind):
            before = None  # another attempt or another state: its clock starts again
        since = held.since if held.since is not None else before.waiting_since if before else now
        reruns, rerun_at = (before.reruns, before.rerun_at) if before else (0, None)
        record = Record(held.attempt, waiting=held.kind, waiting_since=since, reruns=reruns, rerun_at=rerun_at)
        waited = now - (rerun_at if rerun_at is not None else since)
        if waited >= config.start_timeout:
            if held.kind == "start" and reruns < START_RERUNS:
                out.actions.append(Action(job_id, held.attempt, "rerun", note=_lost_run(held.attempt, waited, config)))
                out.unless_done[job_id] = record  # e.g. the broker is still down: try again on the next pass
                record = dataclasses.replace(record, reruns=reruns + 1, rerun_at=now)
            else:
                kind = "end_cancel" if held.kind == "cancel" else "fail_start"
                out.actions.append(Action(job_id, held.attempt, kind, note=_gave_up(held, reruns, now - since, config)))
        out.records[job_id] = record
    return out


def _lost_run(attempt: int, waited: float, config: FixesConfig) -> str:
    return (f"attempt {attempt} has published nothing {waited:.0f}s after its Start (start_timeout="
            f"{config.start_timeout:g}s): its run was lost (a flushed broker, a killed Celery worker, or NATS down "
            "past its retries)")


def _gave_up(held: Waiting, reruns: int, waited: float, config: FixesConfig) -> str:
    if held.kind == "cancel":
        return (f"cancel never finished: CANCELING for {waited:.0f}s (start_timeout={config.start_timeout:g}s; its "
                "revoke may have hit a broker outage); ended by the sweep")
    again = f", nor after its run was enqueued again {reruns} time(s)" if reruns else ""
    return (f"attempt {held.attempt} never started: its run published nothing within {config.start_timeout:g}s of "
            f"its Start{again}")


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


def _confirm(decided: Plan, store: SweepStore, queue: QueueReader, jobs: Mapping[int, int], layout: QueueLayout,
             config: FixesConfig, sleep: Callable[[float], None]) -> None:
    """The confirming look at the jobs first sighted in this pass, judged against that first look; merged into
    `decided` (its records, actions, skips; an outage during it marks those jobs' records)."""
    sleep(config.confirm_after)
    again = {job_id: jobs[job_id] for job_id in decided.sighted}
    ids = list(again)
    second = plan(again, _snapshots(queue, again), store.counts(ids),
                  {job_id: decided.records[job_id] for job_id in ids}, layout, config)
    decided.records.update(second.records)
    decided.actions += second.actions
    decided.skipped.update(second.skipped)
    decided.unreachable = decided.unreachable or second.unreachable


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
    snapshots = _snapshots(queue, jobs) if jobs else {}
    counts = store.counts(ids) if ids else {}
    previous = store.previous(ids + list(held))
    decided = plan(jobs, snapshots, counts, previous, layout, config)
    if decided.sighted and not decided.unreachable and config.confirm_after > 0:
        _confirm(decided, store, queue, jobs, layout, config, sleep)
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
