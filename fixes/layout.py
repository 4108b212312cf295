"""Where a job's tasks live in NATS. Defaults are Antenna's layout."""

from __future__ import annotations

from dataclasses import dataclass

ANTENNA_MAX_DELIVER = 2
ANTENNA_ACK_WAIT = 300.0
ANTENNA_MAX_ACK_PENDING = 1000
ANTENNA_STREAM_MAX_AGE = 86400.0


@dataclass(frozen=True)
class QueueLayout:
    stream_format: str = "job_{job_id}"
    subject_format: str = "job.{job_id}.tasks"
    consumer_format: str = "job-{job_id}-consumer"
    retention: str = "limits"  # "limits" (Antenna) | "workqueue"
    storage: str = "file"  # "file" | "memory"
    max_age: float = ANTENNA_STREAM_MAX_AGE
    ack_wait: float = ANTENNA_ACK_WAIT
    max_deliver: int = ANTENNA_MAX_DELIVER
    max_ack_pending: int = ANTENNA_MAX_ACK_PENDING
    advisory_stream: str = "job_advisories"

    def __post_init__(self):
        if self.retention not in ("limits", "workqueue"):
            raise ValueError(f"retention must be 'limits' or 'workqueue', got {self.retention!r}")
        if self.storage not in ("file", "memory"):
            raise ValueError(f"storage must be 'file' or 'memory', got {self.storage!r}")
        if self.ack_wait <= 0 or self.max_deliver < 1:
            raise ValueError("ack_wait must be > 0 and max_deliver >= 1")

    def stream(self, job_id: int) -> str:
        return self.stream_format.format(job_id=job_id)

    def subject(self, job_id: int) -> str:
        return self.subject_format.format(job_id=job_id)

    def consumer(self, job_id: int) -> str:
        return self.consumer_format.format(job_id=job_id)

    def msg_id(self, job_id: int, attempt: int, image_id) -> str:
        """Nats-Msg-Id for one task: a retried publish inside the dedupe window is stored once."""
        return f"job{job_id}-a{attempt}-img{image_id}"


@dataclass(frozen=True)
class AckRef:
    """What a JetStream ack reply subject says about one delivery."""

    stream: str
    consumer: str
    num_delivered: int
    stream_seq: int
    consumer_seq: int
    timestamp_ns: int  # server time the task was stored (nanoseconds since the epoch)
    pending: int
    domain: str | None = None

    @property
    def timestamp(self) -> float:
        return self.timestamp_ns / 1e9


_BAD_NAME_CHARS = set("*> \t\r\n")


def _name(token: str) -> str:
    if not token or _BAD_NAME_CHARS & set(token):
        raise ValueError(f"bad name token {token!r}")
    return token


def _number(token: str) -> int:
    if not token.isascii() or not token.isdigit():
        raise ValueError(f"bad number token {token!r}")
    return int(token)


def parse_reply_subject(subject: str) -> AckRef:
    """Parse `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>` or the newer form
    `$JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>.<random>`.

    Anything else raises ValueError. Reply subjects come from workers over HTTP: never publish an ack to a
    subject that did not parse (a crafted `$JS.API.STREAM.DELETE.<name>` would delete a stream).
    """
    if not isinstance(subject, str):
        raise ValueError(f"reply subject must be a string, got {type(subject).__name__}")
    tokens = subject.split(".")
    if tokens[:2] != ["$JS", "ACK"]:
        raise ValueError(f"not a JetStream ack subject: {subject!r}")
    domain = None
    if len(tokens) == 9:
        rest = tokens[2:]
    elif len(tokens) >= 11:
        domain = None if tokens[2] == "_" else _name(tokens[2])
        _name(tokens[3])
        rest = tokens[4:11]
    else:
        raise ValueError(f"unexpected number of tokens in ack subject: {subject!r}")
    stream, consumer, *numbers = rest
    delivered, sseq, cseq, ts, pending = (_number(t) for t in numbers)
    return AckRef(_name(stream), _name(consumer), delivered, sseq, cseq, ts, pending, domain)


def belongs_to_attempt(ref: AckRef, layout: QueueLayout, job_id: int, attempt_started: float) -> bool:
    """True if the delivery belongs to the job's current attempt.

    After delete + re-create under the same names the server accepts a stale ack from the previous attempt
    and applies it to the new message with the same sequence numbers (it ignores the timestamp). Every task
    of the current attempt was stored after its stream was created, so fence on that time.
    `attempt_started` is the stream creation time returned by JobQueue.create/ensure (server clock, which
    nats-py truncates to microseconds): compare in whole microseconds so float rounding cannot flip the fence.
    """
    started_ns = round(attempt_started * 1_000_000) * 1000
    return (
        ref.stream == layout.stream(job_id)
        and ref.consumer == layout.consumer(job_id)
        and ref.timestamp_ns >= started_ns
    )
