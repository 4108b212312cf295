"""Process-wide objects built from Django settings: config, layout, binding, NATS bridge."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string

from fixes.config import FixesConfig
from fixes.jetstream.bridge import NatsBridge
from fixes.layout import QueueLayout


def config() -> FixesConfig:
    value = getattr(settings, "FIXES", None)
    if value is None:
        return FixesConfig()
    return value if isinstance(value, FixesConfig) else FixesConfig(**value)


@lru_cache(maxsize=1)
def layout() -> QueueLayout:
    """Antenna's setting names; FIXES_ADVISORY_STREAM names the host's advisory stream (None: capture none)."""
    d = QueueLayout()
    return QueueLayout(
        ack_wait=float(getattr(settings, "NATS_TASK_TTR", d.ack_wait)),
        max_deliver=int(getattr(settings, "NATS_MAX_DELIVER", d.max_deliver)),
        max_ack_pending=int(getattr(settings, "NATS_MAX_ACK_PENDING", d.max_ack_pending)),
        retention=getattr(settings, "NATS_RETENTION", d.retention),
        storage=getattr(settings, "NATS_STORAGE", d.storage),
        max_age=float(getattr(settings, "NATS_STREAM_MAX_AGE", d.max_age)),
        replicas=int(getattr(settings, "NATS_STREAM_REPLICAS", d.replicas)),
        per_attempt_consumer=config().fencing,
        advisory_stream=getattr(settings, "FIXES_ADVISORY_STREAM", d.advisory_stream),
        advisory_subjects=tuple(getattr(settings, "FIXES_ADVISORY_SUBJECTS", d.advisory_subjects)),
        advisory_max_age=float(getattr(settings, "FIXES_ADVISORY_MAX_AGE", d.advisory_max_age)),
    )


@lru_cache(maxsize=1)
def bridge() -> NatsBridge:
    return NatsBridge(settings.NATS_URL, layout())  # reconnects by itself after a fork (gunicorn, Celery)


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
    from fixes.django import reaper

    reaper._healthy_until.clear()  # job ids of another database
