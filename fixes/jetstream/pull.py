"""Raw JetStream pull requests: what nats-py's fetch() hides (how a pull ended), on any nats-py version."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import nats
import nats.js.errors as jserr
from nats.js import api

log = logging.getLogger(__name__)

PULL_GRACE = 0.05  # s: how long past its expiry a pull waits for the server's answer
NO_MESSAGES = "404"  # a no_wait pull's end when the stream has nothing more to hand out


class NoResponders(Exception):
    """A pull request that nobody serves: the stream or the consumer is gone (or JetStream is down)."""


class Puller:
    """Raw JetStream pull requests on one inbox of its own (`<inbox>.<n>`: one reply subject per request).

    nats-py 2.16's fetch() hides how a pull ended; reserve() needs to tell "the stream has nothing more"
    (404, no_wait) from "held back or empty" (the request lingered until it expired). Every request carries
    a deadline the server honours (`expires`; a no_wait request without one waits forever on the server
    while max_ack_pending holds tasks back), and each pull waits for the server's end-of-request status (or
    a full batch), so no request is left behind to capture tasks nobody collects. A delivery that still
    arrives late (after its pull gave up, e.g. from a server that was paused) waits here and goes out with
    the next pull, its ack_wait restarted (+WPI) — unless it waited a whole ack_wait: the server has taken it
    back by then, and handing it out would put the same task in two workers' hands. The status of an earlier request is recognised by its
    reply subject and dropped.
    """

    def __init__(self, nc: nats.NATS, inbox: str, subject: str, ack_wait: float | None = None):
        self._nc, self._inbox, self._subject, self._ack_wait = nc, inbox, subject, ack_wait
        self._arrived: asyncio.Queue = asyncio.Queue()  # (monotonic arrival, msg)
        self._sub = None
        self._requests = 0

    @classmethod
    async def open(cls, nc: nats.NATS, stream: str, consumer: str, ack_wait: float | None = None) -> Puller:
        """`ack_wait`: the consumer's; a late delivery older than that is not handed out (None: always)."""
        inbox = nc.new_inbox()
        puller = cls(nc, inbox, f"{api.DEFAULT_PREFIX}.CONSUMER.MSG.NEXT.{stream}.{consumer}", ack_wait)

        async def arrived(msg):
            puller._arrived.put_nowait((time.monotonic(), msg))

        puller._sub = await nc.subscribe(f"{inbox}.*", cb=arrived)
        return puller

    async def close(self) -> None:
        await self._sub.unsubscribe()

    async def pull(self, batch: int, expires: float, no_wait: bool) -> tuple[list, str | None]:
        """Up to `batch` deliveries, and how the request ended: None (full batch, or no answer in time) or
        the server's status — "404" (no_wait: nothing more in the stream), "408" (expired), "409".

        no_wait: the server answers at once with what it has and ends a short batch with 404 — except when
        nothing is there or max_ack_pending holds tasks back: then it lingers like a plain pull, so
        `expires` bounds it (without one such a request would wait on the server forever)."""
        msgs, expired = [], 0
        while not self._arrived.empty() and len(msgs) < batch:  # late deliveries of an earlier pull
            at, msg = self._arrived.get_nowait()
            if _status(msg):
                continue
            if self._ack_wait is not None and time.monotonic() - at >= self._ack_wait:
                expired += 1  # taken back by the server already: it hands it out again, counted
                continue
            msgs.append(msg)
        if expired:
            log.info("pull: %d late deliveries older than ack_wait=%ss not handed out", expired, self._ack_wait)
        for msg in msgs:  # their ack_wait ran while they waited here: restart it, or NATS redelivers them at once
            await self._nc.publish(msg.reply, b"+WPI")
        if len(msgs) == batch:
            return msgs, None
        self._requests += 1
        reply = f"{self._inbox}.{self._requests}"
        request = {"batch": batch - len(msgs), "expires": max(int(expires * 1e9) - 100_000, 1_000_000)}
        if no_wait:
            request["no_wait"] = True
        await self._nc.publish(self._subject, json.dumps(request).encode(), reply=reply)
        sent = time.monotonic()
        deadline = sent + expires + PULL_GRACE
        while len(msgs) < batch:
            try:
                _, msg = await asyncio.wait_for(self._arrived.get(), timeout=max(deadline - time.monotonic(), 0.001))
            except TimeoutError:
                break  # no answer in time: a hung or unreachable server; the caller checks the connection
            status = _status(msg)
            if not status:
                msgs.append(msg)
            elif msg.subject != reply:
                continue  # the end of an earlier request
            elif status == "503":
                raise NoResponders
            elif status in (NO_MESSAGES, "408", "409"):  # nothing more, expired, consumer deleted / limits
                if no_wait and status == "408" and time.monotonic() - sent < 0.9 * expires:
                    status = NO_MESSAGES  # nats-server 2.10 ends a short no_wait batch with an early 408
                return msgs, status
            else:
                raise jserr.APIError.from_msg(msg)
        return msgs, None


def _status(msg) -> str | None:
    return msg.headers.get(api.Header.STATUS) if msg.headers else None
