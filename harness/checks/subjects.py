"""NATS names and ack subjects as the checker reads them, written apart from `fixes.layout`.

The checks judge the fixes; reading NATS through the fixes' own naming or parsing would hide a misread in
the code under test from the checker meant to catch it. Antenna's layout: stream `job_{id}`, consumer
`job-{id}-consumer`; with the `fencing` fix on, one consumer per attempt, `job-{id}-consumer-a{attempt}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from harness.settings import RunSettings

STREAM = re.compile(r"^job_(\d+)$")


def stream_name(job_id: int) -> str:
    return f"job_{job_id}"


def fencing_on(settings: Mapping[str, str]) -> bool:
    """CHAOS_FIX_FENCING when set, else the CHAOS_FIXES master switch (on by default)."""
    return RunSettings.of(settings).fix_on("fencing")


@dataclass(frozen=True)
class QueueNames:
    fencing: bool

    @classmethod
    def of(cls, settings: Mapping[str, str]) -> QueueNames:
        return cls(fencing_on(settings))

    def stream(self, job_id: int) -> str:
        return stream_name(job_id)

    def consumer(self, job_id: int, attempt: int) -> str:
        return f"job-{job_id}-consumer-a{attempt}" if self.fencing else f"job-{job_id}-consumer"


def job_of_stream(stream: str) -> int | None:
    match = STREAM.match(stream or "")
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class AckedDelivery:
    """What an ack reply subject says about one delivery (the fields the checks use)."""

    stream: str
    consumer: str
    delivered: int
    stream_seq: int
    pending: int  # messages of the consumer's filter after this one not delivered yet, when it was handed out


def parse_ack(subject: object) -> AckedDelivery | None:
    """`$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>` (9 tokens), or with
    `<domain>.<account hash>` after `ACK` and an optional random token at the end (11 or 12); else None."""
    if not isinstance(subject, str):
        return None
    tokens = subject.split(".")
    if tokens[:2] != ["$JS", "ACK"] or len(tokens) not in (9, 11, 12):
        return None
    stream, consumer, *numbers = tokens[2:9] if len(tokens) == 9 else tokens[4:11]
    if not stream or not consumer or not all(n.isascii() and n.isdigit() for n in numbers):
        return None
    return AckedDelivery(stream, consumer, int(numbers[0]), int(numbers[1]), int(numbers[4]))
