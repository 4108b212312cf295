"""Async adapter over nats-py (2.10 and newer) for one QueueLayout: a job's stream, its pull consumer, its tasks.

Error contract: NATS not answering -> QueueUnavailable (answer HTTP 503, retry later). The job's stream or
consumer is gone -> QueueMissing (reserve/publish/read_task). snapshot() never raises for either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

import nats
import nats.js.errors as jserr
from nats.js import api

from fixes.jetstream.deadletters import DeadLetters
from fixes.jetstream.errors import (
    NO_SUITABLE_PEERS,
    STREAM_NOT_FOUND,
    UNAVAILABLE,
    QueueMissing,
    QueueUnavailable,
)
from fixes.jetstream.inspect import Inspector
from fixes.jetstream.pull import NO_MESSAGES, NoResponders, Puller
from fixes.layout import QueueLayout, parse_reply_subject

log = logging.getLogger(__name__)

API_TIMEOUT = 5.0  # nats-py's JetStream API default
PUBLISH_WINDOW = 1000  # publishes in flight at once (nats-py's publish_async allows 4000)
IDLE_SUBS_PER_JOB = 8
JOBS_WITH_SUBS = 64
NO_WAIT_EXPIRES = 0.01  # s: what a no_wait pull may take when max_ack_pending holds tasks back


@dataclass(frozen=True)
class Delivery:
    data: bytes
    reply_subject: str
    stream_seq: int
    num_delivered: int


class JobQueue(Inspector, DeadLetters):
    """One nats-py connection serving every job of one QueueLayout. Not thread-safe: use it from one loop.

    Jobs are addressed by (job_id, attempt); the attempt only matters for a layout that names a consumer
    per attempt."""

    def __init__(self, nc: nats.NATS, layout: QueueLayout, api_timeout: float = API_TIMEOUT):
        self._nc, self.layout, self._timeout = nc, layout, api_timeout
        self._js = nc.jetstream(timeout=api_timeout)
        self._subs: OrderedDict[tuple[int, str], list[Puller]] = OrderedDict()  # idle pull subscriptions

    @classmethod
    async def connect(cls, url: str, layout: QueueLayout, *, api_timeout: float = API_TIMEOUT, **options) -> JobQueue:
        """options go to nats.connect; max_reconnect_attempts -1 (and, in nats-py, 0) retry the first connect forever."""
        options.setdefault("error_cb", _log_error)
        try:
            return cls(await nats.connect(servers(url), **options), layout, api_timeout)
        except UNAVAILABLE as exc:
            raise QueueUnavailable(f"cannot connect to NATS at {url}: {exc!r}") from exc

    async def close(self) -> None:
        for key in list(self._subs):
            await self._drop_subs(key)
        with contextlib.suppress(Exception):
            await self._nc.close()

    @property
    def server_id(self) -> str | None:  # changes on every server restart: the cheap "server restarted" signal
        return (getattr(self._nc, "_server_info", None) or {}).get("server_id")

    @property
    def is_connected(self) -> bool:
        return self._nc.is_connected

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        if not self._nc.is_connected:  # fail fast while reconnecting instead of waiting for the API timeout
            raise QueueUnavailable("NATS is not connected")
        try:
            yield
        except UNAVAILABLE as exc:
            raise QueueUnavailable(f"NATS is not answering: {exc!r}") from exc
        except jserr.APIError as exc:
            if exc.err_code == NO_SUITABLE_PEERS:  # a node of the cluster is down or still rejoining
                raise QueueUnavailable(f"NATS cannot place the stream now: {exc!r}") from exc
            raise

    # ---- lifecycle -------------------------------------------------------------------------------------

    def _stream_config(self, job_id: int) -> api.StreamConfig:
        lay = self.layout
        return api.StreamConfig(name=lay.stream(job_id), subjects=[lay.subject(job_id)], max_age=lay.max_age,
                                retention=api.RetentionPolicy(lay.retention), storage=api.StorageType(lay.storage),
                                allow_direct=True, num_replicas=lay.replicas)

    def _consumer_config(self, job_id: int, attempt: int | None) -> api.ConsumerConfig:
        lay = self.layout
        return api.ConsumerConfig(durable_name=lay.consumer(job_id, attempt), ack_policy=api.AckPolicy.EXPLICIT,
                                  ack_wait=lay.ack_wait, max_deliver=lay.max_deliver, max_ack_pending=lay.max_ack_pending,
                                  filter_subject=lay.subject(job_id), deliver_policy=api.DeliverPolicy.ALL)

    async def create(self, job_id: int, attempt: int | None = None) -> None:
        """Add the stream and the attempt's consumer (an identical one that exists is kept)."""
        with self._guard():
            await self._js.add_stream(self._stream_config(job_id))
            await self._js.add_consumer(self.layout.stream(job_id), self._consumer_config(job_id, attempt))

    async def ensure(self, job_id: int, attempt: int | None = None) -> None:
        """Create only what is missing (Antenna's behaviour)."""
        stream = self.layout.stream(job_id)
        with self._guard():
            if not await _exists(self._js.stream_info(stream)):
                await self._js.add_stream(self._stream_config(job_id))
            if not await _exists(self._js.consumer_info(stream, self.layout.consumer(job_id, attempt))):
                await self._js.add_consumer(stream, self._consumer_config(job_id, attempt))

    async def delete(self, job_id: int) -> bool:
        """Delete the job's stream and with it every consumer. Idempotent: False when it was already gone."""
        for key in [k for k in self._subs if k[0] == job_id]:
            await self._drop_subs(key)
        with self._guard():
            return await _exists(self._js.delete_stream(self.layout.stream(job_id)))

    # ---- tasks -----------------------------------------------------------------------------------------

    async def publish(self, job_id: int, items: Iterable[tuple[str | None, bytes]]) -> int:
        """Publish (msg_id, payload) pairs; returns how many were stored (dedupe hits are not counted). With
        ids a publish retried inside the dedupe window (one that timed out may have been stored) stores once."""
        subject, stored, items = self.layout.subject(job_id), 0, iter(items)
        while chunk := list(islice(items, PUBLISH_WINDOW)):
            with self._guard():
                acks = await self._publish_chunk(subject, chunk)
            for ack in acks:
                if isinstance(ack, jserr.NoStreamResponseError):
                    await self._raise_missing(job_id, None)
                if isinstance(ack, UNAVAILABLE):
                    raise QueueUnavailable(f"publish not confirmed: {ack!r}") from ack
                if isinstance(ack, BaseException):
                    raise ack
                stored += not ack.duplicate
        return stored

    async def _publish_chunk(self, subject: str, chunk: list[tuple[str | None, bytes]]) -> list:
        futures = []
        try:
            for msg_id, data in chunk:
                headers = {api.Header.MSG_ID: msg_id} if msg_id is not None else None
                futures.append(await self._js.publish_async(subject, data, headers=headers))
            # own deadline: publish_async_completed() waits forever if the server dies
            return await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), self._timeout)
        finally:
            for future in futures:
                future.cancel()

    async def reserve(self, job_id: int, batch: int, timeout: float, attempt: int | None = None) -> list[Delivery]:
        """Up to `batch` tasks; [] when none arrive within `timeout`. Raises QueueMissing if gone.

        A no_wait pull first hands out what is there at once; only when that is nothing, or max_ack_pending
        holds tasks back, a lingering pull waits up to `timeout` for a full batch (a trickle of one-task batches
        costs a Celery task, a row lock and an ack flush per task: docs/benchmarks.md (d))."""
        key = (job_id, self.layout.consumer(job_id, attempt))
        puller, reusable, began = await self._checkout(key), True, time.monotonic()
        try:
            with self._guard():
                try:
                    msgs, end = await puller.pull(batch, min(timeout, NO_WAIT_EXPIRES), no_wait=True)
                    remaining = timeout - (time.monotonic() - began)
                    if len(msgs) < batch and end != NO_MESSAGES and remaining > 0.001:
                        more, _ = await puller.pull(batch - len(msgs), remaining, no_wait=False)
                        msgs += more
                except NoResponders:  # a pull on a deleted stream/consumer gets "no responders" at once
                    reusable = False
                    await self._raise_missing(job_id, attempt)
            if not msgs and not self._nc.is_connected:
                raise QueueUnavailable("NATS connection lost during fetch")
        finally:
            await (self._checkin(key, puller) if reusable else _close(puller))
        return [Delivery(m.data, m.reply, m.metadata.sequence.stream, m.metadata.num_delivered) for m in msgs]

    async def ack_all(self, reply_subjects: Iterable[str]) -> None:
        """Ack several tasks with one flush: returns once the server has read every ack."""
        await self._reply(reply_subjects, b"+ACK", flush=True)

    async def in_progress(self, reply_subjects: Iterable[str]) -> None:
        """Restart each task's ack_wait (and the consumer's last_active): +WPI."""
        await self._reply(reply_subjects, b"+WPI", flush=False)

    async def _reply(self, reply_subjects: Iterable[str], payload: bytes, flush: bool) -> None:
        subjects = list(reply_subjects)
        for subject in subjects:
            parse_reply_subject(subject)  # ValueError before anything is sent: never to a subject a worker made up
        with self._guard():
            for subject in subjects:
                await self._nc.publish(subject, payload)
            if flush:
                await self._nc.flush(timeout=self._timeout)

    async def read_task(self, job_id: int, seq: int) -> bytes | None:
        """The stored payload of one task; None for a hole (acked under workqueue, terminated, expired)."""
        with self._guard():
            try:
                msg = await self._js.get_msg(self.layout.stream(job_id), seq)
            except jserr.NotFoundError as exc:
                if exc.err_code == STREAM_NOT_FOUND:
                    raise QueueMissing(job_id, stream_exists=False) from exc
                return None
        return msg.data or b""

    async def _raise_missing(self, job_id: int, attempt: int | None) -> None:
        """Turn an ambiguous "no responders" into QueueMissing when the stream (or consumer) is really gone."""
        stream, consumer = self.layout.stream(job_id), None
        with self._guard():
            try:
                if attempt is None and self.layout.per_attempt_consumer:
                    await self._js.stream_info(stream)
                else:
                    consumer = self.layout.consumer(job_id, attempt)
                    await self._js.consumer_info(stream, consumer)
            except jserr.NotFoundError as exc:
                await self._drop_subs((job_id, consumer))
                raise QueueMissing(job_id, stream_exists=exc.err_code != STREAM_NOT_FOUND) from exc
        raise QueueUnavailable("JetStream did not answer although stream and consumer exist")

    # ---- pull subscription pool: reuse, but never share one between concurrent fetches -------------------

    async def _checkout(self, key: tuple[int, str]) -> Puller:
        idle = self._subs.get(key)
        if idle:
            return idle.pop()
        with self._guard():
            return await Puller.open(self._nc, self.layout.stream(key[0]), key[1], self.layout.ack_wait)

    async def _checkin(self, key: tuple[int, str], puller: Puller) -> None:
        idle = self._subs.setdefault(key, [])
        self._subs.move_to_end(key)
        if len(idle) < IDLE_SUBS_PER_JOB:
            idle.append(puller)
        else:
            await _close(puller)
        while len(self._subs) > JOBS_WITH_SUBS:
            await self._drop_subs(next(iter(self._subs)))

    async def _drop_subs(self, key: tuple[int, str]) -> None:
        for puller in self._subs.pop(key, []):
            await _close(puller)


async def _close(puller: Puller) -> None:
    with contextlib.suppress(Exception):
        await puller.close()


async def _exists(call) -> bool:
    try:
        await call
    except jserr.NotFoundError:
        return False
    return True


def servers(url: str) -> list[str]:
    """A comma-separated list of server URLs (one per cluster node, as NATS_URL may hold) as nats-py's list."""
    return [part.strip() for part in url.split(",") if part.strip()]


async def _log_error(exc: Exception) -> None:
    log.debug("nats: %r", exc)
