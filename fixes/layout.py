"""Where a job's tasks live in NATS. Defaults are Antenna's layout."""

from __future__ import annotations

import re
from dataclasses import dataclass

ANTENNA_MAX_DELIVER = 2
ANTENNA_ACK_WAIT = 300.0
ANTENNA_MAX_ACK_PENDING = 1000
ANTENNA_STREAM_MAX_AGE = 86400.0
MAX_SUBJECT = 255


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
    replicas: int = 1  # job streams and the advisory stream: 3 on a 3-node JetStream cluster
    per_attempt_consumer: bool = False  # stale acks cannot cross attempts: each attempt its own consumer
    # dead letters: reuse a stream that already captures advisories; else create this one, as the host would
    advisory_stream: str | None = "advisories"
    advisory_subjects: tuple[str, ...] = ("$JS.EVENT.ADVISORY.>",)
    advisory_max_age: float = 3600.0

    def __post_init__(self):
        if self.retention not in ("limits", "workqueue"):
            raise ValueError(f"retention must be 'limits' or 'workqueue', got {self.retention!r}")
        if self.storage not in ("file", "memory"):
            raise ValueError(f"storage must be 'file' or 'memory', got {self.storage!r}")
        if not 1 <= self.replicas <= 5:
            raise ValueError(f"replicas must be 1 to 5 (JetStream's limit), got {self.replicas}")
        if self.ack_wait <= 0 or self.max_deliver < 1:
            raise ValueError("ack_wait must be > 0 and max_deliver >= 1")

    def stream(self, job_id: int) -> str:
        return self.stream_format.format(job_id=job_id)

    def subject(self, job_id: int) -> str:
        return self.subject_format.format(job_id=job_id)

    def consumer(self, job_id: int, attempt: int | None = None) -> str:
        name = self.consumer_format.format(job_id=job_id)
        if not self.per_attempt_consumer:
            return name
        if attempt is None:
            raise ValueError("this layout names a consumer per attempt: pass the attempt")
        return f"{name}-a{attempt}"

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


_NAME = re.compile(r"[!-~]+")  # printable ASCII, no space; '*', '>' and '.' are refused below


def _name(token: str) -> str:
    if not _NAME.fullmatch(token) or "*" in token or ">" in token:
        raise ValueError(f"bad name token {token!r}")
    return token


def _number(token: str) -> int:
    if not token.isascii() or not token.isdigit() or len(token) > 20:
        raise ValueError(f"bad number token {token!r}")
    return int(token)


def parse_reply_subject(subject: str) -> AckRef:
    """Parse `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>` or the newer form
    `$JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>[.<random>]`.

    Anything else raises ValueError. Reply subjects come from workers over HTTP: never publish to a subject
    that did not parse (a crafted `$JS.API.STREAM.DELETE.<name>` would delete a stream; spaces or CR/LF
    would inject protocol into older clients).
    """
    if not isinstance(subject, str) or len(subject) > MAX_SUBJECT:
        raise ValueError(f"reply subject must be a string of at most {MAX_SUBJECT} characters")
    tokens = subject.split(".")
    if tokens[:2] != ["$JS", "ACK"]:
        raise ValueError(f"not a JetStream ack subject: {subject!r}")
    domain = None
    if len(tokens) == 9:
        rest = tokens[2:]
    elif len(tokens) in (11, 12):
        domain = None if tokens[2] == "_" else _name(tokens[2])
        for token in tokens[3:4] + tokens[11:]:
            _name(token)
        rest = tokens[4:11]
    else:
        raise ValueError(f"unexpected number of tokens in ack subject: {subject!r}")
    stream, consumer, *numbers = rest
    delivered, sseq, cseq, ts, pending = (_number(t) for t in numbers)
    return AckRef(_name(stream), _name(consumer), delivered, sseq, cseq, ts, pending, domain)


def belongs_to_attempt(ref: AckRef, layout: QueueLayout, job_id: int, attempt: int) -> bool:
    """True if the delivery names the stream and consumer of the job's current attempt.

    A stale ack of an earlier attempt names a consumer that no longer exists, so the server drops it even
    when it reaches NATS (a +ACK buffered across a reconnect); with one consumer name for every attempt the
    server would apply it to the new attempt's message with the same sequence numbers.
    """
    return ref.stream == layout.stream(job_id) and ref.consumer == layout.consumer(job_id, attempt)
