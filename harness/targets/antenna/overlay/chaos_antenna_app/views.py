"""The harness's control endpoints under /api/v2/chaos/ (superuser token only, like Antenna's admin actions).

The watchdog and periodic-task endpoints run Antenna's own functions, outside a request transaction: Celery
runs them in autocommit mode, and ATOMIC_REQUESTS would otherwise hold their row locks and log lines until the
response is sent.
"""

from __future__ import annotations

import datetime

from django.db import transaction
from django.utils.decorators import method_decorator
from rest_framework import permissions, status
from rest_framework.authentication import TokenAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from chaos_antenna_app.seed import create_job

DEFAULT_PIPELINE = "moth-detector"
MAX_IMAGES = 100_000


class IsSuperuser(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_superuser)


class ChaosView(APIView):
    authentication_classes = [TokenAuthentication]
    permission_classes = [IsSuperuser]


class Health(APIView):
    """Readiness probe: Django is loaded and answers (no database or broker call)."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    def get(self, request):
        return Response({"ok": True})


class Jobs(ChaosView):
    def post(self, request):
        """{"images": n, "pipeline": slug?} -> 201 {"id": job id}: a new async_api ML job, not started."""
        images = request.data.get("images")
        if not isinstance(images, int) or isinstance(images, bool) or not 0 < images <= MAX_IMAGES:
            return Response({"error": f"images: an integer from 1 to {MAX_IMAGES}"}, status=400)
        job = create_job(images, request.data.get("pipeline") or DEFAULT_PIPELINE)
        return Response({"id": job}, status=status.HTTP_201_CREATED)


@method_decorator(transaction.non_atomic_requests, name="dispatch")
class RevokeJob(ChaosView):
    # Far beyond any idle rule: the cutoff passed to check_stale_jobs() catches this job and no other.
    BACKDATE = datetime.timedelta(days=2)
    CUTOFF_MINUTES = 24 * 60

    def post(self, request, job_id: int):
        """What Antenna's watchdog does to a job that made no progress for Job.STALLED_JOBS_MAX_MINUTES:
        check_stale_jobs() (ami/jobs/tasks.py) revokes it, or takes a terminal Celery state, and cleans up its
        NATS stream and Redis state. Returns check_stale_jobs()'s entry for the job (or null if it was not in a
        running state, which the watchdog leaves alone)."""
        from ami.jobs.models import Job, JobState
        from ami.jobs.tasks import check_stale_jobs

        if not Job.objects.filter(pk=job_id).exists():
            return Response({"error": f"no job {job_id}"}, status=404)
        # A queryset update: Job.save() would bump updated_at (auto_now) right back.
        Job.objects.filter(pk=job_id, status__in=JobState.running_states()).update(
            updated_at=datetime.datetime.now() - self.BACKDATE)
        results = check_stale_jobs(minutes=self.CUTOFF_MINUTES)
        mine = next((entry for entry in results if entry["job_id"] == job_id), None)
        return Response({"job": job_id, "result": mine, "status": Job.objects.get(pk=job_id).status})


class HoldProgressSave(ChaosView):
    def post(self, request, job_id: int):
        """{"seconds": s}: the job's next process-stage progress save waits s seconds between its read and its
        write (chaos_antenna_app/races.py), so a concurrent result task's save is lost under it."""
        from chaos_antenna_app.races import hold_progress_save

        seconds = request.data.get("seconds", 3)
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not 0 < seconds <= 60:
            return Response({"error": "seconds: a number from 0 to 60"}, status=400)
        hold_progress_save(job_id, seconds)
        return Response({"job": job_id, "seconds": seconds})


@method_decorator(transaction.non_atomic_requests, name="dispatch")
class Periodic(ChaosView):
    def post(self, request, name: str):
        """Run one of Antenna's periodic job checks now, in this process; answers its result. A JSON body is
        passed as keyword arguments (e.g. {"minutes": 1, "dry_run": true} for check_stale_jobs)."""
        from ami.jobs import tasks

        known = {"jobs_health_check": tasks.jobs_health_check, "check_stale_jobs": tasks.check_stale_jobs,
                 "mark_lost_images_failed": tasks.mark_lost_images_failed}
        if name not in known:
            return Response({"error": f"unknown periodic task {name!r}; one of {sorted(known)}"}, status=404)
        kwargs = request.data if isinstance(request.data, dict) else {}
        return Response({"task": name, "result": known[name](**kwargs)})
