"""Celery tasks of the fixes. fixes.django.schedule.beat_schedule() schedules the sweep."""

from celery import shared_task

from fixes.django import reaper


@shared_task(name="fixes.sweep", ignore_result=True)
def sweep() -> dict:
    result = reaper.sweep()
    return {"looked_at": result.looked_at, "failed": result.failed, "rerun": result.rerun, "ended": result.ended,
            "unreachable": result.unreachable}

