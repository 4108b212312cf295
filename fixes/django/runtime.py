"""Process-wide objects built from Django settings: config, layout, binding, NATS bridge."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string

from fixes.bridge import NatsBridge
from fixes.config import FixesConfig
from fixes.layout import QueueLayout


def config() -> FixesConfig:
    value = getattr(settings, "FIXES", None)
    if value is None:
        return FixesConfig()
    return value if isinstance(value, FixesConfig) else FixesConfig(**value)


@lru_cache(maxsize=1)
def layout() -> QueueLayout:
    defaults = QueueLayout()
    return QueueLayout(
        ack_wait=float(getattr(settings, "NATS_TASK_TTR", defaults.ack_wait)),
        max_deliver=int(getattr(settings, "NATS_MAX_DELIVER", defaults.max_deliver)),
        max_ack_pending=int(getattr(settings, "NATS_MAX_ACK_PENDING", defaults.max_ack_pending)),
        retention=getattr(settings, "NATS_RETENTION", defaults.retention),
        storage=getattr(settings, "NATS_STORAGE", defaults.storage),
        max_age=float(getattr(settings, "NATS_STREAM_MAX_AGE", defaults.max_age)),
    )


@lru_cache(maxsize=1)
def bridge() -> NatsBridge:
    # NatsBridge reconnects by itself after a fork (gunicorn / Celery prefork children)
    return NatsBridge(settings.NATS_URL, layout())


@lru_cache(maxsize=1)
def binding():
    path = getattr(settings, "FIXES_JOB_BINDING", None)
    if not path:
        raise RuntimeError("settings.FIXES_JOB_BINDING must name a fixes.django.binding.JobBinding class")
    return import_string(path)()


def reset() -> None:
    """Forget cached objects (tests that change settings)."""
    for fn in (layout, bridge, binding):
        fn.cache_clear()
