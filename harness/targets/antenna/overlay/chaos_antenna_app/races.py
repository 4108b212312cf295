"""Fault hooks for races that depend on timing inside Antenna's own code, armed per job through Redis.

`hold_progress_save(job, seconds)` arms one delay: the next process-stage progress save of that job (in
`ami.jobs.tasks._update_job_progress`, which reads the job row, changes its progress JSON and saves it back)
waits between its read and its write until two other progress saves of the job have landed (the next
result's two stages), or at most `seconds`. Whatever those saved is then overwritten by the held, stale copy:
the lost update a concurrent pair of result tasks can produce at random (Antenna #1261 removed the row lock
that serialised them). Where the row is locked, the others cannot save and the hold simply times out.
Nothing happens unless a run arms it.
"""

from __future__ import annotations

import threading
import time

_held = threading.local()


def _key(job_id: int) -> str:
    return f"chaos:hold-progress-save:{job_id}"


def _saves_key(job_id: int) -> str:
    return f"chaos:progress-saves:{job_id}"


def _saves(job_id: int) -> int:
    from django.core.cache import cache

    return cache.get(_saves_key(job_id)) or 0


def hold_progress_save(job_id: int, seconds: float) -> None:
    from django.core.cache import cache

    cache.set(_key(job_id), float(seconds), timeout=300)


def _take(job_id: int) -> float | None:
    """The armed delay, taken by exactly one caller (only one delete of the key succeeds)."""
    from django.core.cache import cache

    seconds = cache.get(_key(job_id))
    return seconds if seconds is not None and cache.delete(_key(job_id)) else None


def install() -> None:
    from ami.jobs import tasks
    from ami.jobs.models import Job

    update_progress, save = tasks._update_job_progress, Job.save

    def update_job_progress(job_id, stage, *args, **kwargs):
        _held.seconds = _take(job_id) if stage == "process" else None
        _held.saves = _saves(job_id)  # before this call reads the job
        try:
            return update_progress(job_id, stage, *args, **kwargs)
        finally:
            _held.seconds = None

    def held_save(self, *args, **kwargs):
        from django.core.cache import cache

        if "progress" not in (kwargs.get("update_fields") or ()):
            return save(self, *args, **kwargs)
        if getattr(_held, "seconds", None):  # between the read in _update_job_progress and this write
            deadline = time.monotonic() + _held.seconds
            while _saves(self.pk) < _held.saves + 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            _held.seconds = None
        try:
            return save(self, *args, **kwargs)
        finally:
            cache.add(_saves_key(self.pk), 0, timeout=300)
            cache.incr(_saves_key(self.pk))

    tasks._update_job_progress = update_job_progress
    Job.save = held_save
