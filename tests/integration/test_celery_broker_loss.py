"""The sandbox's Celery worker survives its broker (Redis) restarting while it holds unacked messages.

A worker holding messages it has not acked yet (tasks waiting for a countdown, acks_late tasks running)
restores them when the broker connection drops. With celery 5.7.0 as released, that restore ran on a
connection whose transport had already been let go: `AttributeError: 'NoneType' object has no attribute
'hostname'`, "Unrecoverable error", and the worker process exits.
"""

from __future__ import annotations

import pytest
import redis
from celery import Celery

from harness.waiting import poll_until

pytestmark = pytest.mark.integration

RESTARTS = 5
HELD = 4  # messages the worker holds unacked at each restart


def connected(worker) -> int:
    return worker.logs(tail=10_000).count("Connected to redis://")


@pytest.mark.stack(fixes="on", sweep_interval=60)  # a stack of its own: its worker is killed if the test fails
def test_worker_survives_redis_restarts_while_holding_messages(sandbox):
    stack = sandbox.stack
    worker = stack.celery_worker
    sender = Celery("sender", broker=stack.settings["CHAOS_REDIS_URL"], set_as_current=False)  # not every shared_task's app
    for restart in range(1, RESTARTS + 1):
        for _ in range(HELD):  # built-in and harmless; the worker holds it unacked until the countdown is due
            sender.send_task("celery.accumulate", args=(restart,), countdown=600)
        with redis.Redis.from_url(stack.settings["CHAOS_REDIS_URL"]) as broker:
            poll_until(lambda broker=broker: broker.hlen("unacked") >= HELD, timeout=30, interval=0.1,
                       what=f"the worker holding {HELD} unacked messages")
        before = connected(worker)
        stack.restart_component("redis")
        poll_until(lambda before=before: connected(worker) > before or not worker.is_running, timeout=60,
                   interval=0.2, what="the worker reconnecting or exiting")
        assert worker.is_running, f"restart {restart}: the Celery worker died:\n{worker.logs(tail=40)}"
    sender.close()
