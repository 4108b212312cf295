"""A job's stream and consumer as nats-py's plain JetStream API reports them (no `fixes.jetstream` code).

`read_queue` raises what the server or the connection raised, except "not found", which is an answer:
the stream or the consumer does not exist. `is_unavailable` tells "NATS did not answer" (down, paused,
restarting, our connection reconnecting) from a misread.
"""

from __future__ import annotations

import asyncio

import nats.errors
import nats.js.errors

from harness.checks.subjects import QueueNames

UNAVAILABLE = (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.errors.ConnectionClosedError,
               nats.errors.ConnectionReconnectingError, nats.errors.StaleConnectionError, nats.errors.NoServersError,
               nats.errors.OutboundBufferLimitError, nats.js.errors.ServiceUnavailableError, asyncio.TimeoutError,
               ConnectionError)


def is_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, UNAVAILABLE)


def empty_queue(consumer: str) -> dict:
    return {"consumer": consumer, "stream_exists": False, "consumer_exists": False, "messages": 0,
            "first_seq": 0, "last_seq": 0, "num_pending": 0, "num_ack_pending": 0, "num_waiting": 0,
            "num_redelivered": 0, "delivered_stream_seq": 0, "delivered_consumer_seq": 0}


async def read_queue(js, names: QueueNames, job_id: int, attempt: int) -> dict:
    """Stream info, then consumer info of the job's current attempt (two calls: not atomic)."""
    stream, consumer = names.stream(job_id), names.consumer(job_id, attempt)
    queue = empty_queue(consumer)
    try:
        info = await js.stream_info(stream)
    except nats.js.errors.NotFoundError:
        return queue
    queue.update(stream_exists=True, messages=info.state.messages, first_seq=info.state.first_seq,
                 last_seq=info.state.last_seq)
    try:
        found = await js.consumer_info(stream, consumer)
    except nats.js.errors.NotFoundError:
        return queue
    delivered = found.delivered
    queue.update(consumer_exists=True, num_pending=found.num_pending or 0, num_ack_pending=found.num_ack_pending or 0,
                 num_waiting=found.num_waiting or 0, num_redelivered=found.num_redelivered or 0,
                 delivered_stream_seq=delivered.stream_seq if delivered else 0,
                 delivered_consumer_seq=delivered.consumer_seq if delivered else 0)
    return queue


async def read_queues(js, names: QueueNames, attempts: dict[int, int], stop_when_down: bool = False
                      ) -> tuple[dict[int, dict | None], list[tuple[int, Exception]]]:
    """Each job's queue ({job_id: attempt}), None where it could not be read, and the (job, error) failures.
    stop_when_down: once NATS does not answer for one job, the others are not asked (one timeout, not one
    per job)."""
    out, failures = dict.fromkeys(attempts), []
    for job_id, attempt in attempts.items():
        try:
            out[job_id] = await read_queue(js, names, job_id, attempt)
        except Exception as exc:
            failures.append((job_id, exc))
            if stop_when_down and is_unavailable(exc):
                break
    return out, failures
