"""The fixes' knobs for a harness run of Antenna with the fixes' PR applied (fixes/antenna/antenna.patch).

chaos_antenna_settings calls `enable(globals())` when CHAOS_FIXES=on, after Antenna's settings (which the PR
already extends with the fixes' app, binding, advisory stream and beat entry) are imported. The same CHAOS_*
variables the sandbox reads (harness/sandbox/settings.py) set the same knobs here, so a scenario means the same
on both targets:

    CHAOS_ACK_WAIT, CHAOS_MAX_DELIVER, CHAOS_MAX_ACK_PENDING   -> NATS_TASK_TTR, NATS_MAX_DELIVER, NATS_MAX_ACK_PENDING
    CHAOS_RETENTION, CHAOS_STORAGE, CHAOS_STREAM_MAX_AGE       -> NATS_RETENTION, NATS_STORAGE, NATS_STREAM_MAX_AGE
    CHAOS_FETCH_TIMEOUT                                        -> NATS_FETCH_TIMEOUT (how long /tasks/ waits on NATS)
    CHAOS_FIXES, CHAOS_FIX_<SWITCH>=0|1, CHAOS_SWEEP_INTERVAL,
    CHAOS_STUCK_GRACE, CHAOS_RESULT_BACKLOG_GRACE, CHAOS_STUCK_ACTION -> FIXES (FixesConfig.from_env, prefix CHAOS_)

and the beat entry `fixes-sweep` runs every sweep_interval. A knob that is absent keeps the PR's value.
Runs inside Antenna's processes: it imports nothing from the harness.
"""

import os
from collections.abc import Mapping, MutableMapping
from datetime import timedelta

from fixes.config import FixesConfig
from fixes.django.schedule import beat_schedule

# CHAOS_<name> -> (setting, type), as harness/sandbox/settings.py maps them
KNOBS = {
    "ACK_WAIT": ("NATS_TASK_TTR", float),
    "MAX_DELIVER": ("NATS_MAX_DELIVER", int),
    "MAX_ACK_PENDING": ("NATS_MAX_ACK_PENDING", int),
    "RETENTION": ("NATS_RETENTION", str),
    "STORAGE": ("NATS_STORAGE", str),
    "STREAM_MAX_AGE": ("NATS_STREAM_MAX_AGE", float),
    "FETCH_TIMEOUT": ("NATS_FETCH_TIMEOUT", float),
}


def enable(namespace: MutableMapping, environ: Mapping[str, str] = os.environ) -> FixesConfig:
    """Apply the run's knobs to a settings module's namespace; returns the fixes' configuration it set."""
    for name, (setting, kind) in KNOBS.items():
        if environ.get(f"CHAOS_{name}"):
            namespace[setting] = kind(environ[f"CHAOS_{name}"])
    config = FixesConfig.from_env(environ, prefix="CHAOS_")
    namespace["FIXES"] = config
    # Antenna's DatabaseScheduler writes beat entries into IntervalSchedule rows when beat starts, and
    # IntervalSchedule.every is an integer: whole seconds, at least one.
    sweep = {name: {**entry, "schedule": timedelta(seconds=max(1, round(entry["schedule"])))}
             for name, entry in beat_schedule(config).items()}
    entries = {name: entry for name, entry in dict(namespace.get("CELERY_BEAT_SCHEDULE") or {}).items()
               if entry.get("task") != "fixes.sweep"}
    namespace["CELERY_BEAT_SCHEDULE"] = {**entries, **sweep}
    return config
