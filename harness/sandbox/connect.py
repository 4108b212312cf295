"""Point this process's Django (ORM, NATS/Redis settings, fixes switches) at a running stack."""

from __future__ import annotations

import contextlib
import os

from django.conf import settings
from django.db import connections

from fixes.config import FixesConfig


def _settings_for(env: dict[str, str]) -> dict:
    from harness.sandbox.settings import _database

    return {
        "NATS_URL": env["CHAOS_NATS_URL"],
        "REDIS_URL": env["CHAOS_REDIS_URL"],
        "CELERY_BROKER_URL": env["CHAOS_REDIS_URL"],  # read when the Celery app finalises its configuration
        "NATS_TASK_TTR": float(env.get("CHAOS_ACK_WAIT", settings.NATS_TASK_TTR)),
        "NATS_MAX_DELIVER": int(env.get("CHAOS_MAX_DELIVER", settings.NATS_MAX_DELIVER)),
        "NATS_RETENTION": env.get("CHAOS_RETENTION", settings.NATS_RETENTION),
        "NATS_STREAM_REPLICAS": int(env.get("CHAOS_STREAM_REPLICAS", settings.NATS_STREAM_REPLICAS)),
        "FIXES": FixesConfig.from_env({**os.environ, **env}, prefix="CHAOS_"),
        "_DATABASE": _database(env["CHAOS_DATABASE_URL"]),
    }


def _reset_caches() -> None:
    from fixes.django import runtime
    from harness.sandbox.celery_app import app
    from harness.sandbox.jobs import progress

    runtime.reset()
    progress.client.cache_clear()
    app.conf.broker_url = settings.REDIS_URL  # tasks sent from this process reach the stack's workers
    app.close()  # its connections to the previous broker
    app.amqp._producer_pool = None  # built on the old connection pool at first use; close() keeps it


@contextlib.contextmanager
def bind_to_stack(stack):
    new = _settings_for(stack.env)
    database = new.pop("_DATABASE")
    saved = {name: getattr(settings, name) for name in new}
    saved_db = _swap_database({**connections.settings["default"], **database})
    for name, value in new.items():
        setattr(settings, name, value)
    _reset_caches()
    try:
        yield
    finally:
        _swap_database(saved_db)
        for name, value in saved.items():
            setattr(settings, name, value)
        _reset_caches()


def _swap_database(database: dict) -> dict:
    """Replace the default connection (its backend may change: sqlite → PostgreSQL); returns the old one."""
    connections.close_all()
    old = dict(connections.settings["default"])
    connections.settings["default"] = database
    with contextlib.suppress(AttributeError):
        del connections["default"]
    return old
