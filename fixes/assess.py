"""Decide from one or two observations of a job's queue whether its tasks died. Pure: no I/O, no clock.

Every rule is written against measured JetStream behaviour:
* Exhausted tasks (max_deliver used up) leave the consumer quiescent: num_pending == 0, num_ack_pending == 0.
  ack_floor does not move over them, so only the app's own counts say how many died.
* With nobody fetching the server does nothing: tasks sit in num_pending / num_ack_pending forever and
  delivered.last_active (bumped by every delivery and +WPI, not by acks or empty fetches) stops moving.
* After a server restart with an ephemeral store the stream is simply gone (and server_id changes); that is
  task loss, never completion.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum

from fixes.config import FixesConfig
from fixes.layout import QueueLayout

MAX_LISTED_IMAGES = 20


@dataclass(frozen=True)
class QueueSnapshot:
    """The job's stream and consumer state at one moment (consumer_info first, then stream_info)."""

    taken_at: float  # unix seconds, client clock
    job_id: int | None = None
    reachable: bool = True
    server_id: str | None = None
    stream_exists: bool = False
    consumer_exists: bool = False
    messages: int = 0
    first_seq: int = 0
    last_seq: int = 0
    num_pending: int = 0
    num_ack_pending: int = 0
    num_waiting: int = 0
    num_redelivered: int = 0
    delivered_stream_seq: int = 0
    delivered_consumer_seq: int = 0
    last_active: float | None = None  # delivered.last_active, unix seconds, server clock
    server_time: float | None = None  # server clock when consumer_info was answered

    @property
    def now(self) -> float:
        """Compare last_active with the server's clock when we have it, so client clock skew cannot matter."""
        return self.server_time if self.server_time is not None else self.taken_at

    @property
    def quiescent(self) -> bool:
        return self.num_pending == 0 and self.num_ack_pending == 0

    @property
    def outstanding(self) -> int:
        return self.num_pending + self.num_ack_pending

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> QueueSnapshot:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class JobCounts:
    """The app's own progress: `processed` includes `failed`."""

    expected: int
    processed: int
    failed: int = 0
    unprocessed_image_ids: tuple[str, ...] = ()
    # results the app accepted but has not stored yet (e.g. waiting in a Celery queue): their tasks
    # may look dead in NATS, yet the work is done
    results_queued: int = 0

    @property
    def remaining(self) -> int:
        return self.expected - self.processed

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "unprocessed_image_ids": list(self.unprocessed_image_ids)}

    @classmethod
    def from_dict(cls, data: dict) -> JobCounts:
        return cls(
            expected=int(data["expected"]),
            processed=int(data["processed"]),
            failed=int(data.get("failed", 0)),
            results_queued=int(data.get("results_queued", 0)),
            unprocessed_image_ids=tuple(str(i) for i in data.get("unprocessed_image_ids", ())),
        )


@dataclass(frozen=True)
class Observation:
    snapshot: QueueSnapshot
    counts: JobCounts

    def to_dict(self) -> dict:
        return {"snapshot": self.snapshot.to_dict(), "counts": self.counts.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> Observation:
        return cls(QueueSnapshot.from_dict(data["snapshot"]), JobCounts.from_dict(data["counts"]))


class Condition(StrEnum):
    HEALTHY = "healthy"
    FINISHED = "finished"
    DEAD_TASKS = "dead_tasks"
    STUCK_NO_FETCHER = "stuck_no_fetcher"
    STREAM_LOST = "stream_lost"
    CONSUMER_LOST = "consumer_lost"
    NATS_UNREACHABLE = "nats_unreachable"
    WAITING_FOR_WORKERS = "waiting_for_workers"  # nothing was ever delivered; not acted on


@dataclass(frozen=True)
class Verdict:
    condition: Condition
    act: bool  # the caller should fail the job now
    confirmed: bool  # the condition also held on the previous observation (always True with confirmations=1)
    dead: int = 0  # tasks that will never produce a result
    reason: str = ""
    evidence: dict = field(default_factory=dict)


def assess(
    current: Observation,
    layout: QueueLayout,
    config: FixesConfig,
    previous: Observation | None = None,
) -> Verdict:
    """Classify `current`; confirm against `previous` when config.confirmations > 1.

    Only one previous observation is kept, so any confirmations >= 2 means "held on two consecutive polls".
    """
    condition, dead, reason = _classify(current, layout, config, previous)
    evidence = _evidence(current, layout, previous)
    confirmed = config.confirmations <= 1 or (
        previous is not None
        and _classify(previous, layout, config, None)[0] == condition
        and _steady(condition, current, previous)
    )
    if condition in (Condition.STREAM_LOST, Condition.CONSUMER_LOST):
        actionable = config.stream_lost_detection and dead > 0
    elif condition is Condition.STUCK_NO_FETCHER:
        actionable = config.stuck_detection and config.stuck_action == "fail"
    else:
        # DEAD_TASKS is gated by whoever calls (inline reaper or sweep switch)
        actionable = condition is Condition.DEAD_TASKS
    return Verdict(condition, actionable and confirmed, confirmed, dead, reason, evidence)


def _classify(
    obs: Observation, layout: QueueLayout, config: FixesConfig, previous: Observation | None
) -> tuple[Condition, int, str]:
    snap, counts = obs.snapshot, obs.counts
    remaining = counts.remaining
    if not snap.reachable:
        # a few seconds' outage must not fail a healthy job: report it, never act on it
        return Condition.NATS_UNREACHABLE, 0, "NATS is not answering"
    if not snap.stream_exists or not snap.consumer_exists:
        # a missing stream reads as "0 pending" - never take that for completion
        what = "stream" if not snap.stream_exists else "consumer"
        cause = _loss_cause(snap, previous, what)
        lost = max(remaining - counts.results_queued, 0)
        suffix = (
            f"; {lost} of {counts.expected} tasks have no result" if lost else "; every task has a result"
        )
        condition = Condition.STREAM_LOST if what == "stream" else Condition.CONSUMER_LOST
        return condition, lost, f"NATS {what} {_queue_name(snap, layout, what)} is gone ({cause}){suffix}"
    if remaining <= 0:
        return Condition.FINISHED, 0, f"all {counts.expected} tasks have a result"
    if counts.results_queued > 0:
        return Condition.HEALTHY, 0, f"{counts.results_queued} results accepted and waiting to be stored"
    if snap.quiescent:
        if snap.last_seq == 0 and snap.delivered_stream_seq == 0:
            return Condition.HEALTHY, 0, "no task published yet"
        return Condition.DEAD_TASKS, remaining, _dead_reason(snap, counts, layout)
    if snap.num_waiting > 0:
        return (
            Condition.HEALTHY,
            0,
            f"{snap.outstanding} tasks outstanding, {snap.num_waiting} fetch(es) waiting",
        )
    if snap.delivered_stream_seq == 0:
        return (
            Condition.WAITING_FOR_WORKERS,
            0,
            f"{snap.outstanding} tasks waiting, no worker has fetched yet",
        )
    idle = _idle(snap)
    progressed = previous is not None and counts.processed > previous.counts.processed
    if idle is not None and idle > layout.ack_wait + config.stuck_grace and not progressed:
        return (
            Condition.STUCK_NO_FETCHER,
            0,
            f"{snap.outstanding} tasks waiting, no worker has fetched for {_secs(idle)} (ack_wait={_secs(layout.ack_wait)})",
        )
    return Condition.HEALTHY, 0, f"{snap.outstanding} tasks outstanding"


def _steady(condition: Condition, current: Observation, previous: Observation) -> bool:
    """For DEAD/STUCK the app's progress (and for DEAD the stream) must not have moved between the polls."""
    if condition is Condition.STUCK_NO_FETCHER:
        return current.counts.processed == previous.counts.processed
    if condition is Condition.DEAD_TASKS:
        return (
            current.counts.processed == previous.counts.processed
            and current.snapshot.last_seq == previous.snapshot.last_seq
        )
    return True


def _secs(value: float) -> str:
    return f"{value:.0f}s" if value >= 10 or float(value).is_integer() else f"{value:.1f}s"


def _idle(snap: QueueSnapshot) -> float | None:
    return None if snap.last_active is None else snap.now - snap.last_active


def _loss_cause(snap: QueueSnapshot, previous: Observation | None, what: str) -> str:
    before = previous.snapshot.server_id if previous is not None else None
    if before and snap.server_id and before != snap.server_id:
        return f"server restarted: id {before} → {snap.server_id}"
    return f"{what} deleted"


def _queue_name(snap: QueueSnapshot, layout: QueueLayout, what: str) -> str:
    job_id = "?" if snap.job_id is None else snap.job_id
    return layout.stream(job_id) if what == "stream" else layout.consumer(job_id)


def _dead_reason(snap: QueueSnapshot, counts: JobCounts, layout: QueueLayout) -> str:
    text = (
        f"{counts.remaining} of {counts.expected} tasks exhausted max_deliver={layout.max_deliver} "
        f"(ack_wait={_secs(layout.ack_wait)})"
    )
    if snap.last_seq < counts.expected:  # sequence numbers count every task ever stored in this stream
        text += f"; only {snap.last_seq} of {counts.expected} tasks were ever published"
    ids = counts.unprocessed_image_ids
    if ids:
        listed = ", ".join(ids[:MAX_LISTED_IMAGES])
        more = len(ids) - MAX_LISTED_IMAGES
        text += f"; images: {listed}" + (f", … (+{more} more)" if more > 0 else "")
    return text


def _evidence(obs: Observation, layout: QueueLayout, previous: Observation | None) -> dict:
    snap, counts = obs.snapshot, obs.counts
    evidence = {
        **snap.to_dict(),
        **counts.to_dict(),
        "remaining": counts.remaining,
        "retention": layout.retention,
    }
    evidence["idle"] = _idle(snap)
    if layout.retention == "workqueue" and snap.stream_exists:
        # only a workqueue stream drops acked tasks, so only there is what is left = pending + in flight + dead
        evidence["stream_dead"] = snap.messages - snap.num_pending - snap.num_ack_pending
    if previous is not None:
        evidence["previous_taken_at"] = previous.snapshot.taken_at
        evidence["previous_processed"] = previous.counts.processed
        evidence["previous_server_id"] = previous.snapshot.server_id
    return evidence
