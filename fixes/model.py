"""What the fixes observe and decide, as plain data: no I/O, no framework."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from enum import StrEnum


@functools.cache
def _names(cls) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


@dataclass(frozen=True)
class QueueSnapshot:
    """A job's stream and consumer at one moment (consumer info first, then stream info: not atomic)."""

    taken_at: float  # unix seconds, client clock
    job_id: int | None = None
    consumer: str | None = None  # the consumer looked at (one per attempt with fencing)
    reachable: bool = True
    server_id: str | None = None
    # not reachable: what NATS said instead of an answer, and whether the server still answered a JetStream request
    # of its own (then only this job's stream is without an answer: no leader, its replicas out of quorum)
    unavailable: str = ""
    server_answering: bool = False
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
    server_time: float | None = None  # server clock when the consumer info was answered

    @property
    def now(self) -> float:  # the server's clock when known: client clock skew cannot matter against last_active
        return self.server_time if self.server_time is not None else self.taken_at

    @property
    def quiescent(self) -> bool:
        return self.num_pending == 0 and self.num_ack_pending == 0

    @property
    def outstanding(self) -> int:
        return self.num_pending + self.num_ack_pending

    def to_dict(self) -> dict:  # every field is a plain value: no dataclasses.asdict deep copy (the sweep's hot path)
        return {name: getattr(self, name) for name in _names(type(self))}

    @classmethod
    def from_dict(cls, data: dict) -> QueueSnapshot:
        names = _names(cls)
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class JobCounts:
    """The app's own progress (`processed` includes `failed`), and results accepted but not stored yet:
    their tasks may look dead in NATS while the work is done."""

    expected: int
    processed: int
    failed: int = 0
    unprocessed_image_ids: tuple[str, ...] = ()
    results_queued: int = 0
    # the fixes' own record of the attempt's publish (AttemptRecord), None until it finished: what the
    # stream must still hold, and what it was like then (unix seconds, client clock; the server's id)
    published: int | None = None
    published_at: float | None = None
    published_server: str | None = None
    # the app's own progress state is gone (e.g. Redis flushed) and the counts come from its database: results
    # still queued can never be counted (its result path fails a job whose state is missing), so they hold nothing
    state_lost: bool = False

    @property
    def remaining(self) -> int:
        return self.expected - self.processed

    @property
    def countable_queued(self) -> int:
        """The queued results that can still be counted."""
        return 0 if self.state_lost else self.results_queued

    def to_dict(self) -> dict:
        return {**{name: getattr(self, name) for name in _names(type(self))},
                "unprocessed_image_ids": list(self.unprocessed_image_ids)}

    @classmethod
    def from_dict(cls, data: dict) -> JobCounts:
        return cls(**{**data, "unprocessed_image_ids": tuple(map(str, data.get("unprocessed_image_ids", ())))})


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
    HEALTHY, FINISHED, DEAD_TASKS = "healthy", "finished", "dead_tasks"
    STUCK_NO_FETCHER, STREAM_LOST, CONSUMER_LOST = "stuck_no_fetcher", "stream_lost", "consumer_lost"
    NATS_UNREACHABLE = "nats_unreachable"
    WAITING_FOR_WORKERS = "waiting_for_workers"  # nothing was ever delivered; not acted on
    TASKS_LOST = "tasks_lost"  # the stream holds fewer tasks than the attempt published (lost writes, purge, age)


LOST = frozenset({Condition.STREAM_LOST, Condition.CONSUMER_LOST, Condition.TASKS_LOST})  # stream_lost_detection
ACTIONABLE = frozenset({Condition.DEAD_TASKS, Condition.STUCK_NO_FETCHER, *LOST})


@dataclass(frozen=True)
class Assessment:
    """The judge's answer about one job. `watch_since` is the clock to remember for the next look."""

    condition: Condition
    act: bool  # fail the job now
    confirmed: bool  # the condition also held on the previous look (always True with confirmations=1)
    dead: int = 0  # tasks that will never produce a result
    reason: str = ""
    evidence: dict = field(default_factory=dict)
    watch_since: float | None = None
