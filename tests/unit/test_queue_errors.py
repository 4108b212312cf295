"""JobQueue's error contract for what a cluster answers: "no suitable peers for placement" (a node down or
still rejoining) is NATS unavailable for now (503, retry), never an unexpected error that ends a Start."""

from __future__ import annotations

import asyncio

import nats.js.errors as jserr
import pytest

from fixes.jetstream import JobQueue, QueueUnavailable
from fixes.jetstream.errors import NO_SUITABLE_PEERS
from fixes.layout import QueueLayout


class Connected:
    """What JobQueue asks of a connection before its first call: connected, and a JetStream context."""

    is_connected = True

    def jetstream(self, timeout: float):
        return None


def _raise_in_guard(error: Exception) -> None:
    queue = JobQueue(Connected(), QueueLayout(replicas=3))
    with queue._guard():
        raise error


def test_no_suitable_peers_is_unavailable():
    error = jserr.BadRequestError(code=400, err_code=NO_SUITABLE_PEERS,
                                  description="no suitable peers for placement, peer offline")
    with pytest.raises(QueueUnavailable):
        _raise_in_guard(error)


def test_other_api_errors_pass_through():
    with pytest.raises(jserr.BadRequestError):
        _raise_in_guard(jserr.BadRequestError(code=400, err_code=10058, description="stream name already in use"))


def test_replicas_must_be_what_jetstream_allows():
    with pytest.raises(ValueError):
        QueueLayout(replicas=0)
    assert asyncio.iscoroutinefunction(JobQueue.create)
