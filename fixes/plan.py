"""The periodic sweep's decisions: a pure plan (looks + what the last pass remembered + config -> actions).
fixes.sweep.run_once does the I/O around it."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from fixes.assess import assess, watched
from fixes.config import FixesConfig
from fixes.layout import QueueLayout
from fixes.model import ACTIONABLE, LOST, Assessment, Condition, JobCounts, Observation, QueueSnapshot

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
    unavailable_since: float | None = None  # unix seconds: the first of the looks in a row NATS did not answer
    sighted_at: float | None = None  # replicated streams: the first of the looks in a row that saw the job lost or stuck

    def to_dict(self) -> dict:
        data = {"attempt": self.attempt, "watch_since": self.watch_since, "outage": self.outage, "warned": self.warned}
        if self.unavailable_since is not None:
            data["unavailable_since"] = self.unavailable_since
        if self.sighted_at is not None:
            data["sighted_at"] = self.sighted_at
        if self.waiting:
            data.update(waiting=self.waiting, waiting_since=self.waiting_since, reruns=self.reruns,
                        rerun_at=self.rerun_at)
        return {**data, **(self.observation.to_dict() if self.observation else {})}

    @classmethod
    def from_dict(cls, data: dict) -> Record:
        seen = Observation.from_dict(data) if "snapshot" in data else None
        return cls(data["attempt"], seen, data.get("watch_since"), data.get("outage", False), data.get("warned", False),
                   data.get("waiting"), data.get("waiting_since"), data.get("reruns", 0), data.get("rerun_at"),
                   data.get("unavailable_since"), data.get("sighted_at"))


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
    """Judge running jobs ({job_id: attempt}) in order, up to the first one NATS did not answer for (a job whose
    stream alone had no answer, the server answering, is passed over). A job whose queue went unanswered for
    config.unavailable_limit is failed with that cause."""
    out, down_at = Plan(), None
    for job_id, attempt in jobs.items():
        out.looked_at += 1
        snapshot, count = snapshots.get(job_id), counts.get(job_id)
        if isinstance(snapshot, QueueSnapshot) and not snapshot.reachable:
            if not snapshot.server_answering:
                out.unreachable, down_at = True, snapshot
                break
            _unanswered(out, job_id, attempt, previous.get(job_id), snapshot, count, layout, config)
            continue
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
        sighted_at = _sighted_at(judged, before, snapshot, layout)
        if kind in ("fail", "warn") and sighted_at is not None and snapshot.taken_at - sighted_at < config.replicated_span:
            kind = None  # a node cut off from its cluster may answer as a stale leader for a while: outwait it
        if not judged.confirmed and (judged.condition in ACTIONABLE or judged.condition is Condition.FINISHED):
            out.sighted.append(job_id)
        if kind:
            out.actions.append(Action(job_id, attempt, kind, judged))
        stuck = judged.condition is Condition.STUCK_NO_FETCHER
        out.records[job_id] = Record(attempt, watched(current, judged.watch_since), judged.watch_since,
                                     warned=stuck and (kind == "warn" or bool(before and before.warned)),
                                     sighted_at=sighted_at)
    if down_at is not None:  # keep every running job's last look, marked: the watch clock restarts after it
        for job_id, attempt in jobs.items():
            if job_id not in out.records or not out.records[job_id].outage:
                _unanswered(out, job_id, attempt, out.records.get(job_id) or previous.get(job_id), down_at,
                            counts.get(job_id), layout, config)
    return out


# what a stale answer can show: a cut-off node that still believes it leads has never heard of a stream created
# since ("not found"), and its copy of a consumer stops moving (idle, as if nobody fetched)
STALE_LOOKING = frozenset({*LOST, Condition.STUCK_NO_FETCHER})


def _sighted_at(judged: Assessment, before: Record | None, look: QueueSnapshot, layout: QueueLayout) -> float | None:
    """Replicated streams: since when the job has looked lost or stuck on every look (None: it does not now)."""
    if layout.replicas <= 1 or judged.condition not in STALE_LOOKING:
        return None
    return before.sighted_at if before is not None and before.sighted_at is not None else look.taken_at


def _unanswered(out: Plan, job_id: int, attempt: int, before: Record | None, look: QueueSnapshot,
                count: JobCounts | Exception | None, layout: QueueLayout, config: FixesConfig) -> None:
    """A job NATS gave no answer for: remember since when, and fail it once that lasted unavailable_limit."""
    record = _outage(before, attempt, look.taken_at)
    out.records[job_id] = record
    waited = look.taken_at - record.unavailable_since
    if config.stream_lost_detection and config.unavailable_limit > 0 and waited >= config.unavailable_limit:
        dead = count.remaining if isinstance(count, JobCounts) else 0
        reason = _unavailable_reason(job_id, look, waited, count, layout, config)
        out.actions.append(Action(job_id, attempt, "fail",
                                  Assessment(Condition.NATS_UNREACHABLE, True, True, dead, reason, {}, None)))


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


def _outage(record: Record | None, attempt: int, now: float) -> Record:
    if record is None or record.attempt != attempt:
        return Record(attempt, outage=True, unavailable_since=now)
    since = record.unavailable_since if record.outage and record.unavailable_since is not None else now
    return Record(attempt, record.observation, record.watch_since, outage=True, warned=record.warned,
                  unavailable_since=since)


def _unavailable_reason(job_id: int, look: QueueSnapshot, waited: float, count: JobCounts | Exception | None,
                        layout: QueueLayout, config: FixesConfig) -> str:
    stream = layout.stream(job_id)
    if look.server_answering:
        cause = f"NATS answers, but not for stream {stream}: it has no leader (its replicas lost quorum)"
    elif "unavailable" in look.unavailable.lower():
        cause = "JetStream is unavailable (the cluster lost quorum, or its store is gone)"
    else:
        cause = "NATS is not answering"
    said = f" (last answer: {look.unavailable})" if look.unavailable else ""
    tail = f"; {count.remaining} of {count.expected} tasks have no result" if isinstance(count, JobCounts) else ""
    return (f"no answer about job {job_id}'s queue for {waited:.0f}s (unavailable_limit={config.unavailable_limit:g}s): "
            f"{cause}{said}{tail}")
