"""Snapshots of a job's stream and consumer, read from the JetStream JSON API directly: nats-py 2.10 has no
typed `last_active`, and no version keeps the server time `ts` of the answer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Mapping
from datetime import datetime

import nats.js.errors as jserr
from nats.js import api

from fixes.jetstream.errors import STREAM_NOT_FOUND, QueueUnavailable, api_error
from fixes.model import QueueSnapshot

SNAPSHOT_CONCURRENCY = 32  # snapshots() in flight at once
SNAPSHOT_TIMEOUT = 5.0


class Inspector:
    """Mixed into JobQueue (uses its _nc, _guard, _timeout, layout and server_id)."""

    async def snapshot(self, job_id: int, attempt: int | None = None) -> QueueSnapshot:
        """Consumer first, then stream (the two calls are not atomic). Never raises for "NATS is down"."""
        stream, consumer = self.layout.stream(job_id), self.layout.consumer(job_id, attempt)
        taken_at, found, stream_info = time.time(), None, None
        try:
            with self._guard():
                try:
                    found = await self._api(f"CONSUMER.INFO.{stream}.{consumer}")
                    stream_info = await self._api(f"STREAM.INFO.{stream}")
                except jserr.NotFoundError as exc:
                    if found is None and exc.err_code != STREAM_NOT_FOUND:  # only the consumer is gone
                        with contextlib.suppress(jserr.NotFoundError):
                            stream_info = await self._api(f"STREAM.INFO.{stream}")
        except QueueUnavailable:
            return self.unreachable(job_id)
        fields: dict = {"server_id": self.server_id, "stream_exists": stream_info is not None}
        if stream_info is not None:
            state = stream_info["state"]
            fields.update(messages=state["messages"], first_seq=state["first_seq"], last_seq=state["last_seq"])
        if found is not None:
            delivered = found.get("delivered") or {}
            fields.update(consumer_exists=True, num_pending=found.get("num_pending") or 0,
                          num_ack_pending=found.get("num_ack_pending") or 0, num_waiting=found.get("num_waiting") or 0,
                          num_redelivered=found.get("num_redelivered") or 0,
                          delivered_stream_seq=delivered.get("stream_seq") or 0,
                          delivered_consumer_seq=delivered.get("consumer_seq") or 0,
                          last_active=unix_time(delivered["last_active"]) if delivered.get("last_active") else None,
                          server_time=unix_time(found["ts"]) if found.get("ts") else None)
        return QueueSnapshot(taken_at=taken_at, job_id=job_id, consumer=consumer, **fields)

    async def snapshots(self, jobs: Mapping[int, int | None], concurrency: int = SNAPSHOT_CONCURRENCY,
                        timeout: float = SNAPSHOT_TIMEOUT) -> dict[int, QueueSnapshot | Exception]:
        """snapshot() of many jobs ({job_id: attempt}), `concurrency` at a time, each within `timeout`.

        A job's own error is returned in its place. Once one snapshot says NATS is not answering, the jobs
        not asked yet get an unreachable snapshot too: a paused server costs one timeout, not one per job.
        """
        gate, down = asyncio.Semaphore(max(1, concurrency)), asyncio.Event()

        async def one(job_id: int, attempt: int | None) -> QueueSnapshot:
            async with gate:
                if down.is_set():
                    return self.unreachable(job_id)
                try:
                    snap = await asyncio.wait_for(self.snapshot(job_id, attempt), timeout)
                except TimeoutError:
                    snap = self.unreachable(job_id)
                if not snap.reachable:
                    down.set()
                return snap

        found = await asyncio.gather(*(one(j, a) for j, a in jobs.items()), return_exceptions=True)
        return {job_id: _no_cancel(value) for job_id, value in zip(jobs, found, strict=True)}

    def unreachable(self, job_id: int) -> QueueSnapshot:
        return QueueSnapshot(taken_at=time.time(), job_id=job_id, reachable=False, server_id=self.server_id)

    async def _api(self, what: str, payload: dict | None = None) -> dict:
        body = json.dumps(payload).encode() if payload is not None else b""
        msg = await self._nc.request(f"{api.DEFAULT_PREFIX}.{what}", body, timeout=self._timeout)
        resp = json.loads(msg.data)
        if "error" in resp:
            raise api_error(resp["error"])
        return resp


def _no_cancel(value):
    """gather(return_exceptions=True) hands back a cancelled child's CancelledError, which is no Exception."""
    if isinstance(value, BaseException) and not isinstance(value, Exception):
        return QueueUnavailable(f"snapshot cancelled: {value!r}")
    return value


_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


def unix_time(text: str) -> float:
    """RFC 3339 with up to nanoseconds (server timestamps) -> unix seconds."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    whole, fraction, zone = match.groups()
    zone = "+00:00" if zone == "Z" else zone
    return datetime.fromisoformat(whole + zone).timestamp() + float(f"0.{fraction or 0}")
