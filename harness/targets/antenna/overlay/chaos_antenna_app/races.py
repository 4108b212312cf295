"""Fault hooks for races that depend on timing inside Antenna's own code, armed per job through Redis.

`hold_progress_save(job, seconds)` arms one delay: the next process-stage progress save of that job (in
`ami.jobs.tasks._update_job_progress`, which reads the job row, changes its progress JSON and saves it back)
waits between its read and its write until another task has saved further process-stage progress for the job
(the next result), or at most `seconds`. That progress is then overwritten by the held, stale copy: the lost
update a concurrent pair of result tasks can produce at random (Antenna #1261 removed the row lock that
serialised them). Where the row is locked, nobody else can save and the hold simply times out.
Only a save that goes further releases the hold: an earlier result's late save (of either stage) does not.
Nothing happens unless a run arms it.
"""

from __future__ import annotations

import threading
import time

_held = threading.local()
STAGE = "process"


def _key(job_id: int) -> str:
    return f"chaos:hold-progress-save:{job_id}"


def hold_progress_save(job_id: int, seconds: float) -> None:
    from django.core.cache import cache

    cache.set(_key(job_id), float(seconds), timeout=300)


def _take(job_id: int) -> float | None:
    """The armed delay, taken by exactly one caller (only one delete of the key succeeds)."""
    from django.core.cache import cache

    seconds = cache.get(_key(job_id))
    return seconds if seconds is not None and cache.delete(_key(job_id)) else None


def _progress(job) -> float:
    return job.progress.get_stage(STAGE).progress


def _wait_for_further_save(job, seconds: float) -> None:
    """Until the committed row's stage progress exceeds the copy about to be written (a plain read: it does
    not wait for a row lock), or `seconds` have passed."""
    mine, deadline = _progress(job), time.monotonic() + seconds
    while time.monotonic() < deadline and _progress(type(job).objects.get(pk=job.pk)) <= mine:
        time.sleep(0.05)


def install() -> None:
    from ami.jobs import tasks
    from ami.jobs.models import Job

    update_progress, save = tasks._update_job_progress, Job.save

    def update_job_progress(job_id, stage, *args, **kwargs):
        _held.seconds = _take(job_id) if stage == STAGE else None
        try:
            return update_progress(job_id, stage, *args, **kwargs)
        finally:
            _held.seconds = None

    def held_save(self, *args, **kwargs):
        if getattr(_held, "seconds", None) and "progress" in (kwargs.get("update_fields") or ()):
            seconds, _held.seconds = _held.seconds, None  # between the read in _update_job_progress and this write
            _wait_for_further_save(self, seconds)
        return save(self, *args, **kwargs)

    tasks._update_job_progress = update_job_progress
    Job.save = held_save
