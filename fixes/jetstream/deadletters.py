"""Dead letters: which tasks of a job exhausted max_deliver, read back from captured MAX_DELIVERIES advisories.

Advisories are plain core-NATS messages, lost unless a stream captures them. Two streams whose subjects
overlap cannot coexist, and hosts often keep their own advisory stream (Antenna: `advisories` on
`$JS.EVENT.ADVISORY.>`, created on every connect). So the fixes never add a stream of their own: they read
from whichever stream already captures the advisories, and where none does they create the host's stream
exactly as the host would (QueueLayout.advisory_*), so the host's own create finds it or succeeds.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass

import nats.js.errors as jserr

from fixes.jetstream.errors import SUBJECTS_OVERLAP
from fixes.jetstream.inspect import unix_time
from fixes.jetstream.pull import Puller

MAX_DELIVERIES = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"
READ_LIMIT = 1000  # dead letters read per job at most


@dataclass(frozen=True)
class DeadLetter:
    stream_seq: int
    deliveries: int
    timestamp: float  # advisory time, unix seconds (server clock)


class DeadLetters:
    """Mixed into JobQueue (uses its _js, _nc, _api, _guard, _timeout and layout)."""

    _advisories: str | None = None

    async def advisory_stream(self) -> str | None:
        """The stream that captures MAX_DELIVERIES advisories: the one that already does, else the layout's,
        created now. None when there is none and the layout names none."""
        if self._advisories:
            return self._advisories
        with self._guard():
            name = await self._capturing_stream()
            if name is None and self.layout.advisory_stream:
                try:
                    await self._js.add_stream(name=self.layout.advisory_stream,
                                              subjects=list(self.layout.advisory_subjects),
                                              max_age=self.layout.advisory_max_age,
                                              num_replicas=self.layout.replicas)
                    name = self.layout.advisory_stream
                except jserr.BadRequestError as exc:  # created meanwhile by the host, under its own name
                    if exc.err_code != SUBJECTS_OVERLAP:
                        raise
                    name = await self._capturing_stream()
        self._advisories = name
        return name

    async def dead_letters(self, job_id: int, attempt: int | None = None) -> list[DeadLetter]:
        """Tasks of the job's consumer (of this attempt) that exhausted max_deliver, oldest first."""
        stream = self._advisories or await self.advisory_stream()
        if stream is None:
            return []
        subject = f"{MAX_DELIVERIES}.{self.layout.stream(job_id)}.{self.layout.consumer(job_id, attempt)}"
        config = {"ack_policy": "none", "deliver_policy": "all", "filter_subject": subject,
                  "inactive_threshold": 60 * 10**9, "mem_storage": True}
        letters: dict[int, DeadLetter] = {}
        with self._guard():
            try:
                info = await self._api(f"CONSUMER.CREATE.{stream}", {"stream_name": stream, "config": config})
            except jserr.NotFoundError:  # the host deleted its stream: look again next time
                self._advisories = None
                return []
            puller = await Puller.open(self._nc, stream, info["name"])
            try:
                pending = min(info.get("num_pending") or 0, READ_LIMIT)
                while len(letters) < pending:
                    msgs, end = await puller.pull(min(pending - len(letters), 256), self._timeout, no_wait=True)
                    for msg in msgs:
                        letter = _dead_letter(msg.data)
                        letters.setdefault(letter.stream_seq, letter)
                    if not msgs or end:
                        break
            finally:
                with contextlib.suppress(Exception):
                    await puller.close()
                with contextlib.suppress(Exception):
                    await self._api(f"CONSUMER.DELETE.{stream}.{info['name']}")
        return sorted(letters.values(), key=lambda letter: letter.stream_seq)

    async def _capturing_stream(self) -> str | None:
        found = await self._api("STREAM.NAMES", {"subject": f"{MAX_DELIVERIES}.x.y"})
        names = found.get("streams") or []
        return names[0] if names else None


def _dead_letter(data: bytes) -> DeadLetter:
    event = json.loads(data)
    return DeadLetter(int(event["stream_seq"]), int(event.get("deliveries", 0)), unix_time(event["timestamp"]))
