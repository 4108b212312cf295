"""The two failures callers must tell apart: NATS not answering (503, retry) and the job's queue gone."""

from __future__ import annotations

import nats.errors
import nats.js.errors as jserr

STREAM_NOT_FOUND = 10059
CONSUMER_NOT_FOUND = 10014
SUBJECTS_OVERLAP = 10065
NAME_IN_USE = 10058
NO_SUITABLE_PEERS = 10005  # a cluster cannot place a replicated stream now (a peer offline, rejoining): retry later


def _names(module, *names: str) -> tuple[type[Exception], ...]:
    """The exception classes of this nats-py version (a few were added after 2.10)."""
    return tuple(getattr(module, name) for name in names if hasattr(module, name))


UNAVAILABLE = (
    TimeoutError,  # also nats.errors.TimeoutError and plain asyncio.TimeoutError
    OSError,
    *_names(nats.errors, "ConnectionClosedError", "NoServersError", "OutboundBufferLimitError",
            "StaleConnectionError", "ConnectionReconnectingError", "ConnectionDrainingError",
            "FlushTimeoutError", "NoRespondersError"),
    *_names(jserr, "ServiceUnavailableError", "TooManyStalledMsgsError"),
)


class QueueUnavailable(Exception):
    """NATS is not answering (down, restarting, disconnected). Callers answer 503 and retry later."""


class QueueMissing(Exception):
    """The job's stream (stream_exists=False) or its consumer is gone."""

    def __init__(self, job_id: int, stream_exists: bool):
        self.job_id, self.stream_exists = job_id, stream_exists
        super().__init__(f"job {job_id}: NATS {'consumer' if stream_exists else 'stream'} is missing")


def api_error(error: dict) -> jserr.APIError:
    """The nats-py exception for a JetStream API error body (NotFoundError for 404, ...), any version."""
    return jserr.APIError.from_error(error)
