"""Async adapter over nats-py for one QueueLayout: a job's stream, its durable pull consumer and its dead letters.

Error contract: NATS not answering -> QueueUnavailable (answer HTTP 503, retry later). The job's stream or
consumer is gone -> QueueMissing (reserve/publish/read_task). snapshot() never raises for either.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

import nats
import nats.errors
import nats.js.errors as jserr
from nats.js import api

from fixes.advisories import AdvisoryReader, DeadLetter, unix_time
from fixes.assess import QueueSnapshot
from fixes.layout import AckRef, QueueLayout, belongs_to_attempt, parse_reply_subject

__all__ = [
    "AckRef",
    "CleanupResult",
    "DeadLetter",
    "Delivery",
    "JobQueue",
    "QueueMissing",
    "QueueUnavailable",
    "belongs_to_attempt",
    "parse_reply_subject",
]

log = logging.getLogger(__name__)

STREAM_NOT_FOUND = 10059
CONSUMER_NOT_FOUND = 10014
API_TIMEOUT = 5.0  # nats-py's JetStream API default
PUBLISH_MAX_PENDING = 4000  # nats-py's publish_async window
PUBLISH_CHUNK = 1000
IDLE_SUBS_PER_JOB = 8
NO_WAIT_EXPIRES = 0.01  # s: what a no_wait pull may take when max_ack_pending holds tasks back
PULL_GRACE = 0.05  # s: how long past its expiry a pull waits for the server's answer
NO_MESSAGES = "404"  # a no_wait pull's end when the stream has nothing more to hand out
JOBS_WITH_SUBS = 64
SNAPSHOT_CONCURRENCY = 32  # snapshots() in flight at once

UNAVAILABLE = (
    TimeoutError,  # also nats.errors.TimeoutError and plain asyncio.TimeoutError
    OSError,
    nats.errors.ConnectionClosedError,
    nats.errors.NoServersError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.StaleConnectionError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.ConnectionDrainingError,
    nats.errors.FlushTimeoutError,
    nats.errors.NoRespondersError,
    jserr.ServiceUnavailableError,
    jserr.TooManyStalledMsgsError,  # publish_async backlog not draining
)


class QueueUnavailable(Exception):
    """NATS is not answering (down, restarting, disconnected). Callers answer 503 and retry later."""


class QueueMissing(Exception):
    """The job's stream (stream_exists=False) or its consumer is gone."""

    def __init__(self, job_id: int, stream_exists: bool):
        self.job_id, self.stream_exists = job_id, stream_exists
        super().__init__(f"job {job_id}: NATS {'consumer' if stream_exists else 'stream'} is missing")


@dataclass(frozen=True)
class Delivery:
    data: bytes
    reply_subject: str
    stream_seq: int
    num_delivered: int


@dataclass(frozen=True)
class CleanupResult:
    consumer_deleted: bool  # False: it was already gone
    stream_deleted: bool


class JobQueue(AdvisoryReader):
    """One nats-py connection serving every job of one QueueLayout. Not thread-safe: use it from one loop."""

    def __init__(self, nc: nats.NATS, layout: QueueLayout, api_timeout: float = API_TIMEOUT):
        self._nc, self.layout, self._timeout = nc, layout, api_timeout
        self._js = nc.jetstream(timeout=api_timeout, publish_async_max_pending=PUBLISH_MAX_PENDING)
        self._subs: OrderedDict[int, list] = OrderedDict()  # job -> idle pull subscriptions

    @classmethod
    async def connect(
        cls, url: str, layout: QueueLayout, *, api_timeout: float = API_TIMEOUT, **nats_options
    ) -> JobQueue:
        """nats_options go to nats.connect. nats-py retries the *first* connect max_reconnect_attempts times;
        -1 and (surprisingly) 0 mean forever."""
        nats_options.setdefault("error_cb", _log_error)
        try:
            return cls(await nats.connect(url, **nats_options), layout, api_timeout)
        except UNAVAILABLE as exc:
            raise QueueUnavailable(f"cannot connect to NATS at {url}: {exc!r}") from exc

    async def close(self) -> None:
        for job_id in list(self._subs):
            await self._drop_subs(job_id)
        with contextlib.suppress(Exception):
            await self._nc.close()

    @property
    def server_id(self) -> str | None:
        """Changes on every server restart: the cheap "server restarted" signal."""
        return self._nc._server_info.get("server_id")

    @property
    def is_connected(self) -> bool:
        return self._nc.is_connected

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        # fail fast while reconnecting instead of waiting for the 5 s JetStream API timeout
        if not self._nc.is_connected:
            raise QueueUnavailable("NATS is not connected")
        try:
            yield
        except UNAVAILABLE as exc:
            raise QueueUnavailable(f"NATS is not answering: {exc!r}") from exc

    # ---- lifecycle -------------------------------------------------------------------------------------

    def _stream_config(self, job_id: int) -> api.StreamConfig:
        return api.StreamConfig(
            name=self.layout.stream(job_id),
            subjects=[self.layout.subject(job_id)],
            retention=api.RetentionPolicy(self.layout.retention),
            storage=api.StorageType(self.layout.storage),
            max_age=self.layout.max_age,
            allow_direct=True,
        )

    def _consumer_config(self, job_id: int) -> api.ConsumerConfig:
        return api.ConsumerConfig(
            durable_name=self.layout.consumer(job_id),
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=self.layout.ack_wait,
            max_deliver=self.layout.max_deliver,
            max_ack_pending=self.layout.max_ack_pending,
            filter_subject=self.layout.subject(job_id),
            deliver_policy=api.DeliverPolicy.ALL,
        )

    async def create(self, job_id: int) -> float:
        """Add stream and consumer; returns the stream's creation time (unix s, server clock) for fencing."""
        with self._guard():
            info = await self._js.add_stream(self._stream_config(job_id))
            await self._js.add_consumer(self.layout.stream(job_id), self._consumer_config(job_id))
        return _created(info)

    async def ensure(self, job_id: int) -> float:
        """Create only what is missing (Antenna's behaviour); returns the stream's creation time."""
        stream = self.layout.stream(job_id)
        with self._guard():
            try:
                info = await self._js.stream_info(stream)
            except jserr.NotFoundError:
                info = await self._js.add_stream(self._stream_config(job_id))
            try:
                await self._js.consumer_info(stream, self.layout.consumer(job_id))
            except jserr.NotFoundError:
                await self._js.add_consumer(stream, self._consumer_config(job_id))
        return _created(info)

    async def delete(self, job_id: int) -> CleanupResult:
        """Idempotent: a stream or consumer that is already gone counts as cleaned."""
        await self._drop_subs(job_id)
        stream = self.layout.stream(job_id)
        with self._guard():
            consumer_deleted = await _unless_absent(
                self._js.delete_consumer(stream, self.layout.consumer(job_id))
            )
            stream_deleted = await _unless_absent(self._js.delete_stream(stream))
        return CleanupResult(consumer_deleted, stream_deleted)

    # ---- tasks -----------------------------------------------------------------------------------------

    async def publish(self, job_id: int, items: Iterable[tuple[str | None, bytes]]) -> int:
        """Publish (msg_id, payload) pairs; returns how many were stored (dedupe hits are not counted).

        msg_id None sends no Nats-Msg-Id. With ids, re-publishing after a failure inside the dedupe window
        stores each task once: a publish that timed out during a disconnect may still have been stored.
        """
        subject, stored, items = self.layout.subject(job_id), 0, iter(items)
        while chunk := list(islice(items, PUBLISH_CHUNK)):
            with self._guard():
                futures = []
                try:
                    for msg_id, data in chunk:
                        headers = {api.Header.MSG_ID: msg_id} if msg_id is not None else None
                        # a stall deadline costs a task per message (5x slower): only when the window is full
                        full = self._js.publish_async_pending() >= PUBLISH_MAX_PENDING
                        stall = self._timeout if full else None
                        futures.append(await self._js.publish_async(subject, data, stall, headers=headers))
                    # own futures with a deadline: publish_async_completed() waits forever if the server dies
                    acks = await asyncio.wait_for(
                        asyncio.gather(*futures, return_exceptions=True), self._timeout
                    )
                finally:
                    for future in futures:
                        future.cancel()
            for ack in acks:
                if isinstance(ack, jserr.NoStreamResponseError):
                    await self._raise_missing(job_id)
                if isinstance(ack, BaseException):
                    raise ack
                stored += not ack.duplicate
        return stored

    async def reserve(self, job_id: int, batch: int, timeout: float) -> list[Delivery]:
        """Up to `batch` tasks; [] when none arrive within `timeout`. Raises QueueMissing if gone.

        First a no_wait pull: when the stream holds fewer tasks than `batch`, what is there goes out at once
        (a job's last tasks, redeliveries). Only when that is nothing, or max_ack_pending holds tasks back,
        a lingering pull waits up to `timeout` for the rest of the batch: under back-pressure a full batch is
        worth the wait, as a trickle of one-task batches costs the result path a Celery task, a row lock and
        an ack flush per task (measured: a third of the throughput, docs/benchmarks.md (d)).
        """
        puller, reusable = await self._checkout(job_id), True
        began = time.monotonic()
        try:
            with self._guard():
                try:
                    msgs, end = await puller.pull(batch, min(timeout, NO_WAIT_EXPIRES), no_wait=True)
                    remaining = timeout - (time.monotonic() - began)
                    if len(msgs) < batch and end != NO_MESSAGES and remaining > 0.001:
                        more, _ = await puller.pull(batch - len(msgs), remaining, no_wait=False)
                        msgs += more
                except _NoResponders:
                    # a pull on a deleted stream/consumer gets "no responders" at once
                    reusable = False
                    await self._raise_missing(job_id)
            if not msgs and not self._nc.is_connected:
                raise QueueUnavailable("NATS connection lost during fetch")
        finally:
            await (self._checkin(job_id, puller) if reusable else self._release(puller))
        return [Delivery(m.data, m.reply, m.metadata.sequence.stream, m.metadata.num_delivered) for m in msgs]

    async def ack_all(self, reply_subjects: Iterable[str]) -> None:
        """Ack several tasks with one flush: returns once the server has read every ack."""
        subjects = list(reply_subjects)
        for subject in subjects:
            parse_reply_subject(subject)  # ValueError before anything is sent
        with self._guard():
            for subject in subjects:
                await self._nc.publish(subject, b"+ACK")
            await self._nc.flush(timeout=self._timeout)

    async def ack(self, reply_subject: str) -> None:
        await self._reply(reply_subject, b"+ACK")

    async def in_progress(self, reply_subject: str) -> None:
        """Restart the task's ack_wait (and refresh the consumer's last_active)."""
        await self._reply(reply_subject, b"+WPI")

    async def term(self, reply_subject: str, reason: str = "") -> None:
        """Never redeliver; the reason lands in the MSG_TERMINATED advisory."""
        await self._reply(reply_subject, b"+TERM " + reason.encode() if reason else b"+TERM")

    async def _reply(self, reply_subject: str, payload: bytes) -> None:
        parse_reply_subject(reply_subject)  # ValueError: never publish to a subject a worker made up
        with self._guard():
            await self._nc.publish(reply_subject, payload)

    async def read_task(self, job_id: int, seq: int) -> bytes | None:
        """The stored payload of one task; None for a hole (acked/terminated under workqueue, or expired)."""
        with self._guard():
            try:
                msg = await self._js.get_msg(self.layout.stream(job_id), seq)
            except jserr.NotFoundError as exc:
                if exc.err_code == STREAM_NOT_FOUND:
                    raise QueueMissing(job_id, stream_exists=False) from exc
                return None
        return msg.data or b""

    # ---- inspection ------------------------------------------------------------------------------------

    async def snapshot(self, job_id: int) -> QueueSnapshot:
        """Consumer first, then stream (the two calls are not atomic). Never raises for "NATS is down"."""
        base = {"taken_at": time.time(), "job_id": job_id}
        stream = self.layout.stream(job_id)
        raw = stream_info = None
        try:
            with self._guard():
                try:
                    raw = await self._api(f"CONSUMER.INFO.{stream}.{self.layout.consumer(job_id)}")
                    stream_info = await self._api(f"STREAM.INFO.{stream}")
                except jserr.NotFoundError as exc:
                    if raw is None and exc.err_code != STREAM_NOT_FOUND:  # only the consumer is gone
                        with contextlib.suppress(jserr.NotFoundError):
                            stream_info = await self._api(f"STREAM.INFO.{stream}")
        except QueueUnavailable:
            return self._unreachable(job_id)
        fields: dict = {"server_id": self.server_id, "stream_exists": stream_info is not None}
        if stream_info is not None:
            state = stream_info["state"]
            fields.update(
                messages=state["messages"], first_seq=state["first_seq"], last_seq=state["last_seq"]
            )
        if raw is not None:
            info = api.ConsumerInfo.from_response(dict(raw))
            delivered = info.delivered
            fields.update(
                consumer_exists=True,
                num_pending=info.num_pending or 0,
                num_ack_pending=info.num_ack_pending or 0,
                num_waiting=info.num_waiting or 0,
                num_redelivered=info.num_redelivered or 0,
                delivered_stream_seq=delivered.stream_seq if delivered else 0,
                delivered_consumer_seq=delivered.consumer_seq if delivered else 0,
                last_active=delivered.last_active.timestamp()
                if delivered and delivered.last_active
                else None,
                server_time=unix_time(raw["ts"]) if raw.get("ts") else None,
            )
        return QueueSnapshot(**base, **fields)

    async def snapshots(
        self, job_ids: Iterable[int], concurrency: int = SNAPSHOT_CONCURRENCY, timeout: float = API_TIMEOUT
    ) -> dict[int, QueueSnapshot | Exception]:
        """snapshot() of many jobs, at most `concurrency` at a time, each within `timeout` seconds.

        A job's own error is returned in its place (it never stops the others). A snapshot that times out
        counts as NATS not answering; once one says so, the jobs not started yet are not asked either:
        they get an unreachable snapshot too, so a paused server costs one timeout, not one per job.
        """
        gate, down = asyncio.Semaphore(max(1, concurrency)), asyncio.Event()

        async def one(job_id: int) -> QueueSnapshot:
            async with gate:
                if down.is_set():
                    return self._unreachable(job_id)
                try:
                    snap = await asyncio.wait_for(self.snapshot(job_id), timeout)
                except TimeoutError:
                    snap = self._unreachable(job_id)
                if not snap.reachable:
                    down.set()
                return snap

        ids = list(job_ids)
        found = await asyncio.gather(*(one(i) for i in ids), return_exceptions=True)
        return {job_id: _no_cancel(value) for job_id, value in zip(ids, found, strict=True)}

    def _unreachable(self, job_id: int) -> QueueSnapshot:
        return QueueSnapshot(taken_at=time.time(), job_id=job_id, reachable=False, server_id=self.server_id)

    async def _api(self, what: str) -> dict:
        """Raw JetStream API request: keeps fields nats-py drops, like the server time `ts`."""
        msg = await self._nc.request(f"{api.DEFAULT_PREFIX}.{what}", b"", timeout=self._timeout)
        resp = json.loads(msg.data)
        if "error" in resp:
            raise jserr.APIError.from_error(resp["error"])
        return resp

    async def _raise_missing(self, job_id: int) -> None:
        """Turn an ambiguous "no responders" into QueueMissing when the stream or consumer is really gone."""
        stream = self.layout.stream(job_id)
        with self._guard():
            try:
                await self._js.consumer_info(stream, self.layout.consumer(job_id))
            except jserr.NotFoundError as exc:
                await self._drop_subs(job_id)
                raise QueueMissing(job_id, stream_exists=exc.err_code != STREAM_NOT_FOUND) from exc
        raise QueueUnavailable("JetStream did not answer although stream and consumer exist")

    # ---- pull subscription pool: reuse, but never share one between concurrent fetches -------------------

    async def _checkout(self, job_id: int):
        idle = self._subs.get(job_id)
        if idle:
            return idle.pop()
        with self._guard():
            return await _Puller.open(self._nc, self.layout.stream(job_id), self.layout.consumer(job_id))

    async def _checkin(self, job_id: int, sub) -> None:
        idle = self._subs.setdefault(job_id, [])
        self._subs.move_to_end(job_id)
        if len(idle) < IDLE_SUBS_PER_JOB:
            idle.append(sub)
        else:
            await self._release(sub)
        while len(self._subs) > JOBS_WITH_SUBS:
            await self._drop_subs(next(iter(self._subs)))

    async def _drop_subs(self, job_id: int) -> None:
        for sub in self._subs.pop(job_id, []):
            await self._release(sub)

    @staticmethod
    async def _release(puller: _Puller) -> None:
        with contextlib.suppress(Exception):
            await puller.close()


class _NoResponders(Exception):
    """A pull request that nobody serves: the stream or the consumer is gone (or JetStream is down)."""


class _Puller:
    """Raw JetStream pull requests on one inbox of its own (`<inbox>.<n>`: one reply subject per request).

    nats-py 2.16's fetch() hides how a pull ended; reserve() needs to tell "the stream has nothing more"
    (404, no_wait) from "held back or empty" (the request lingered until it expired). Every request carries
    a deadline the server honours (`expires`; a no_wait request without one waits forever on the server
    while max_ack_pending holds tasks back), and each pull waits for the server's end-of-request status (or
    a full batch), so no request is left behind to capture tasks nobody collects. A delivery that still
    arrives late (after its pull gave up) waits in the subscription and goes out with the next pull; the
    status of an earlier request is recognised by its reply subject and dropped.
    """

    def __init__(self, nc: nats.NATS, sub, inbox: str, subject: str):
        self._nc, self._sub, self._inbox, self._subject = nc, sub, inbox, subject
        self._requests = 0

    @classmethod
    async def open(cls, nc: nats.NATS, stream: str, consumer: str) -> _Puller:
        inbox = nc.new_inbox()
        sub = await nc.subscribe(f"{inbox}.*")
        return cls(nc, sub, inbox, f"{api.DEFAULT_PREFIX}.CONSUMER.MSG.NEXT.{stream}.{consumer}")

    async def close(self) -> None:
        await self._sub.unsubscribe()

    async def pull(self, batch: int, expires: float, no_wait: bool) -> tuple[list, str | None]:
        """Up to `batch` deliveries, and how the request ended: None (full batch, or no answer in time) or
        the server's status — "404" (no_wait: nothing more in the stream), "408" (expired), "409".

        no_wait: the server answers at once with what it has and ends a short batch with 404 — except when
        nothing is there or max_ack_pending holds tasks back: then it lingers like a plain pull, so
        `expires` bounds it (without one such a request would wait on the server forever)."""
        msgs = []
        while self._sub.pending_msgs and len(msgs) < batch:  # late deliveries of an earlier pull
            msg = await self._sub.next_msg(timeout=1)
            if not _status(msg):
                msgs.append(msg)
        if len(msgs) == batch:
            return msgs, None
        self._requests += 1
        reply = f"{self._inbox}.{self._requests}"
        request = {"batch": batch - len(msgs), "expires": max(int(expires * 1e9) - 100_000, 1_000_000)}
        if no_wait:
            request["no_wait"] = True
        await self._nc.publish(self._subject, json.dumps(request).encode(), reply=reply)
        deadline = time.monotonic() + expires + PULL_GRACE
        while len(msgs) < batch:
            try:
                msg = await self._sub.next_msg(timeout=max(deadline - time.monotonic(), 0.001))
            except TimeoutError:
                break  # no answer in time: a hung or unreachable server; the caller checks the connection
            status = _status(msg)
            if not status:
                msgs.append(msg)
            elif msg.subject != reply:
                continue  # the end of an earlier request
            elif status == "503":
                raise _NoResponders
            elif status in (NO_MESSAGES, "408", "409"):  # nothing more, expired, consumer deleted / limits
                return msgs, status
            else:
                raise jserr.APIError.from_msg(msg)
        return msgs, None


def _no_cancel(value):
    """gather(return_exceptions=True) hands back a cancelled child's CancelledError, which is no Exception."""
    if isinstance(value, BaseException) and not isinstance(value, Exception):
        return QueueUnavailable(f"snapshot cancelled: {value!r}")
    return value


def _status(msg) -> str | None:
    return msg.headers.get(api.Header.STATUS) if msg.headers else None


async def _unless_absent(call) -> bool:
    try:
        await call
    except jserr.NotFoundError:
        return False
    return True


def _created(info: api.StreamInfo) -> float:
    return info.created.timestamp() if info.created else time.time()


async def _log_error(exc: Exception) -> None:
    log.debug("nats: %r", exc)
