"""Dead letters: MAX_DELIVERIES / MSG_TERMINATED advisories, stored durably and read back per job.

Advisories are plain core-NATS messages, lost unless a stream captures them, so the stream must exist
before any task can die. The read side names exactly which tasks died, and after how many deliveries.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import nats.js.errors as jserr
from nats.js import api

SUBJECTS_OVERLAP = 10065
NAME_IN_USE = 10058
MAX_DELIVERIES = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"
TERMINATED = "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED"


@dataclass(frozen=True)
class DeadLetter:
    stream_seq: int
    deliveries: int
    kind: str  # "max_deliveries" | "terminated"
    reason: str
    timestamp: float  # advisory time, unix seconds (server clock)


class AdvisoryReader:
    """Mixed into JobQueue (uses its _js, _guard, _release, _timeout and layout)."""

    _advisories: str | None = None

    async def ensure_advisory_stream(self) -> str:
        """Capture MAX_DELIVERIES / MSG_TERMINATED advisories durably; reuse a stream that already does."""
        name = self.layout.advisory_stream
        with self._guard():
            try:
                await self._js.add_stream(
                    name=name,
                    subjects=[f"{MAX_DELIVERIES}.>", f"{TERMINATED}.>"],
                    max_age=self.layout.max_age,
                    storage=api.StorageType.FILE,
                )
            except jserr.BadRequestError as exc:
                if exc.err_code == SUBJECTS_OVERLAP:  # e.g. Antenna's `advisories` over $JS.EVENT.ADVISORY.>
                    name = await self._js.find_stream_name_by_subject(f"{MAX_DELIVERIES}.>")
                elif exc.err_code != NAME_IN_USE:
                    raise
        self._advisories = name
        return name

    async def dead_letters(self, job_id: int, since: float | None = None) -> list[DeadLetter]:
        """Tasks of this job that exhausted max_deliver or were terminated, from advisories at/after `since`.

        Stream names are reused across attempts: pass the attempt's stream creation time as `since`.
        """
        stream = self._advisories or await self.ensure_advisory_stream()
        suffix = f"{self.layout.stream(job_id)}.{self.layout.consumer(job_id)}"
        config = api.ConsumerConfig(
            filter_subjects=[f"{MAX_DELIVERIES}.{suffix}", f"{TERMINATED}.{suffix}"],
            ack_policy=api.AckPolicy.NONE,
            deliver_policy=api.DeliverPolicy.ALL if since is None else api.DeliverPolicy.BY_START_TIME,
            opt_start_time=None if since is None else _iso(since),
            inactive_threshold=60.0,
            mem_storage=True,
        )
        letters: dict[int, DeadLetter] = {}
        with self._guard():
            info = await self._js.add_consumer(stream, config)
            sub = await self._js.pull_subscribe_bind(info.name, stream=stream)
            try:
                pending = info.num_pending or 0
                while pending > 0:
                    for msg in await sub.fetch(min(pending, 256), timeout=self._timeout):
                        pending = msg.metadata.num_pending
                        letter = _dead_letter(msg.subject, msg.data)
                        if since is None or letter.timestamp >= since:
                            letters.setdefault(letter.stream_seq, letter)
            finally:
                await self._release(sub)
                with contextlib.suppress(Exception):
                    await self._js.delete_consumer(stream, info.name)
        return sorted(letters.values(), key=lambda letter: letter.stream_seq)


def _dead_letter(subject: str, data: bytes) -> DeadLetter:
    event = json.loads(data)
    kind = "max_deliveries" if subject.startswith(MAX_DELIVERIES) else "terminated"
    return DeadLetter(
        stream_seq=int(event["stream_seq"]),
        deliveries=int(event.get("deliveries", 0)),
        kind=kind,
        reason=event.get("reason") or ("max_deliver exhausted" if kind == "max_deliveries" else "terminated"),
        timestamp=unix_time(event["timestamp"]),
    )


_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


def unix_time(text: str) -> float:
    """RFC 3339 with up to nanoseconds (server timestamps) -> unix seconds."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    whole, fraction, zone = match.groups()
    zone = "+00:00" if zone == "Z" else zone
    return datetime.fromisoformat(whole + zone).timestamp() + float(f"0.{fraction or 0}")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
