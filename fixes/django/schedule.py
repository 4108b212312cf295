"""Celery beat entry for the sweep (importable from settings: no models imported here)."""

from fixes.config import FixesConfig


def beat_schedule(config: FixesConfig) -> dict:
    """Merge into CELERY_BEAT_SCHEDULE; empty when the sweep is off."""
    if not config.sweep:
        return {}
    return {"fixes-sweep": {"task": "fixes.sweep", "schedule": config.sweep_interval}}
