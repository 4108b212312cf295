"""Snapshots of a job's stream and consumer, read from the JetStream JSON API directly: nats-py 2.10 has no
typed `last_active`, and no version keeps the server time `ts` of the answer."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import time
from collections.abc import Mapping
from datetime import datetime

import nats.js.errors as jserr
from nats.js import api

from fixes.jetstream.errors import STREAM_NOT_FOUND, QueueUnavailable, api_error
from fixes.model import QueueSnapshot

SNAPSHOT_CONCURRENCY = 256  # consumer infos in flight at once in snapshots()
SNAPSHOT_TIMEOUT = 5.0
LIST_AT_LEAST = 32  # from this many jobs on, snapshots() reads the streams' states from STREAM.LIST pages


class Inspector:
    """Mixed into JobQueue (uses its _nc, _guard, _timeout, layout and server_id)."""

    async def snapshot(self, job_id: int, attempt: int | None = None, listed: dict | None = None,
                       together: bool = False) -> QueueSnapshot:
        """Consumer first, then stream (the two calls are not atomic). Never raises for "NATS is down".

        `listed`: the stream's info from a STREAM.LIST page read before (snapshots()); the stream is then not
        asked again unless the consumer's answer says it is gone. `together`: both asked at once (one round
        trip; no order between the two reads)."""
        stream, consumer = self.layout.stream(job_id), self.layout.consumer(job_id, attempt)
        taken_at, found, stream_info = time.time(), None, None
        try:
            with self._guard():
                if together and listed is None:
                    found, stream_info = await asyncio.gather(self._found(f"CONSUMER.INFO.{stream}.{consumer}"),
                                                              self._found(f"STREAM.INFO.{stream}"))
                else:
                    found, stream_info = await self._one_then_other(stream, consumer, listed)
        except QueueUnavailable as exc:
            return self.unreachable(job_id, str(exc.__cause__ or exc))
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

    async def _one_then_other(self, stream: str, consumer: str, listed: dict | None) -> tuple[dict | None, dict | None]:
        found, stream_info = None, None
        try:
            found = await self._api(f"CONSUMER.INFO.{stream}.{consumer}")
            stream_info = listed or await self._api(f"STREAM.INFO.{stream}")
        except jserr.NotFoundError as exc:
            if found is None and exc.err_code != STREAM_NOT_FOUND:  # only the consumer is gone
                stream_info = listed
                if listed is None:
                    with contextlib.suppress(jserr.NotFoundError):
                        stream_info = await self._api(f"STREAM.INFO.{stream}")
        return found, stream_info

    async def _found(self, what: str) -> dict | None:
        try:
            return await self._api(what)
        except jserr.NotFoundError:
            return None

    async def snapshots(self, jobs: Mapping[int, int | None], concurrency: int = SNAPSHOT_CONCURRENCY,
                        timeout: float = SNAPSHOT_TIMEOUT) -> dict[int, QueueSnapshot | Exception]:
        """snapshot() of many jobs ({job_id: attempt}), `concurrency` at a time, each within `timeout`.

        From LIST_AT_LEAST jobs on, the streams' states come from STREAM.LIST pages (256 streams an answer) read
        first, so each job costs one request (its consumer's info). A job whose stream is not on the pages (a
        page that failed, a stream created or deleted while paging) is looked at alone, as before.
        A job's own error is returned in its place. Once one snapshot says NATS is not answering, the jobs
        not asked yet get an unreachable snapshot too: a paused server costs one timeout, not one per job. Unless
        the server still answers a JetStream request of its own: then only that job's stream is without an answer
        (no leader: its replicas lost quorum), its snapshot says so (`server_answering`) and the others are asked.
        """
        listed = await self.stream_states(jobs, concurrency, timeout) if len(jobs) >= LIST_AT_LEAST else {}
        down, pending, out = asyncio.Event(), iter(list(jobs.items())), {}

        async def one(job_id: int, attempt: int | None) -> QueueSnapshot:
            if down.is_set():
                return self.unreachable(job_id)
            stream = listed.get(job_id)
            try:  # a listed stream costs one request, which has its own API timeout: no timer of ours around it
                snap = await (self.snapshot(job_id, attempt, stream) if stream and timeout >= self._timeout
                              else asyncio.wait_for(self.snapshot(job_id, attempt), timeout))
            except TimeoutError:
                snap = self.unreachable(job_id, f"no answer within {timeout:g}s")
            if not snap.reachable and not down.is_set():
                if await self.server_answers():
                    return dataclasses.replace(snap, server_answering=True)
                down.set()
            return snap

        async def worker() -> None:  # a pool, not one task per job: 100,000 jobs stay cheap in memory
            for job_id, attempt in pending:
                try:
                    out[job_id] = await one(job_id, attempt)
                except Exception as exc:
                    out[job_id] = exc

        found = await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(jobs))))),
                                     return_exceptions=True)
        for value in found:
            if isinstance(value, BaseException) and not isinstance(value, Exception):
                raise value  # the pass itself was cancelled
        return {job_id: out.get(job_id, QueueUnavailable("not looked at")) for job_id in jobs}

    async def stream_states(self, jobs: Mapping[int, int | None], concurrency: int = SNAPSHOT_CONCURRENCY,
                            timeout: float = SNAPSHOT_TIMEOUT) -> dict[int, dict]:
        """{job_id: {"state": {messages, first_seq, last_seq}}} of the jobs' streams found on STREAM.LIST pages
        (filtered by the layout's subject when it allows a wildcard). Best effort: a page that fails is left out."""
        wanted = {self.layout.stream(job_id): job_id for job_id in jobs}
        body = {"subject": subject} if (subject := _subject_filter(self.layout)) else {}
        found: dict[int, dict] = {}

        async def page(offset: int) -> dict | None:
            try:
                with self._guard():
                    answer = await asyncio.wait_for(self._api("STREAM.LIST", {**body, "offset": offset}), timeout)
            except (QueueUnavailable, jserr.Error, TimeoutError, ValueError):
                return None
            for info in answer.get("streams") or ():
                job_id = wanted.get((info.get("config") or {}).get("name"))
                if job_id is not None and info.get("state") is not None:
                    state = info["state"]
                    found[job_id] = {"state": {k: state[k] for k in ("messages", "first_seq", "last_seq")}}
            return answer

        first = await page(0)
        if not first or not first.get("limit"):
            return found
        offsets = iter(range(first["limit"], first.get("total") or 0, first["limit"]))

        async def pager() -> None:
            for offset in offsets:
                await page(offset)

        await asyncio.gather(*(pager() for _ in range(max(1, min(concurrency // 16, 16)))))
        return found

    def unreachable(self, job_id: int, said: str = "") -> QueueSnapshot:
        return QueueSnapshot(taken_at=time.time(), job_id=job_id, reachable=False, server_id=self.server_id,
                             unavailable=said)

    async def server_answers(self) -> bool:
        """JetStream answers its account info: the server and its meta group are there."""
        try:
            with self._guard():
                await self._api("INFO")
            return True
        except (QueueUnavailable, jserr.Error, ValueError):
            return False

    async def _api(self, what: str, payload: dict | None = None) -> dict:
        body = json.dumps(payload).encode() if payload is not None else b""
        msg = await self._nc.request(f"{api.DEFAULT_PREFIX}.{what}", body, timeout=self._timeout)
        resp = json.loads(msg.data)
        if "error" in resp:
            raise api_error(resp["error"])
        return resp


def _subject_filter(layout) -> str | None:
    """The layout's task subject with a wildcard for the job id, when the id is a whole token of it."""
    subject = layout.subject("*")
    return subject if all(token == "*" or "*" not in token for token in subject.split(".")) else None


_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


def unix_time(text: str) -> float:
    """RFC 3339 with up to nanoseconds (server timestamps) -> unix seconds."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    whole, fraction, zone = match.groups()
    zone = "+00:00" if zone == "Z" else zone
    return datetime.fromisoformat(whole + zone).timestamp() + float(f"0.{fraction or 0}")
