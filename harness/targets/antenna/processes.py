"""Antenna's own processes — gunicorn, the Celery worker, Celery beat — run under Antenna's interpreter.

They are the sandbox's process classes with another command line and environment, so they keep the harness's
lifecycle: a process group killed as a whole, a temp dir as working directory, orphan reaping, logs.
"""

from __future__ import annotations

from harness.infra.base import ManagedProcess
from harness.infra.celery import CeleryBeat, CeleryWorker
from harness.infra.django import DjangoServer

CELERY_APP = "config.celery_app"
QUEUES = ("antenna", "jobs", "ml_results")  # run_job goes to jobs, results to ml_results, beat tasks to antenna
HEALTH_PATH = "/api/v2/chaos/health/"


class AntennaProcess(ManagedProcess):
    """Runs `python` (Antenna's virtualenv) with the target's environment as given: not the sandbox's
    PYTHONPATH and settings module, which SandboxProcess would add."""

    python: str

    def environment(self) -> dict[str, str]:
        env = ManagedProcess.environment(self)
        env["CHAOS_MEDIA_ROOT"] = str(self.tmpdir / "media")  # uploads and crops: gone with the temp dir
        return env


class AntennaWeb(AntennaProcess, DjangoServer):
    """gunicorn serving config.wsgi (threaded workers, as the sandbox's web)."""

    def __init__(self, *, python: str, **kwargs):
        super().__init__(app="config.wsgi:application", health_path=HEALTH_PATH, **kwargs)
        self.python = python

    def command(self) -> list[str]:
        # Antenna's gunicorn may predate --no-control-socket: the sandbox's command line is not reused.
        return [self.python, "-m", "gunicorn", self.app, "--bind", f"{self.host}:{self.port}",
                "--workers", str(self.workers), "--worker-class", "gthread", "--threads", str(self.threads),
                "--timeout", str(self.request_timeout), "--graceful-timeout", "5", "--preload",
                "--worker-tmp-dir", str(self.tmpdir), "--error-logfile", "-", "--log-level", "info"]


class AntennaCeleryWorker(AntennaProcess, CeleryWorker):
    """`celery -A config.celery_app worker -Q antenna,jobs,ml_results` (Antenna's local/CI layout: one worker
    for every queue)."""

    def __init__(self, *, python: str, concurrency: int = 4, **kwargs):
        super().__init__(app=CELERY_APP, queues=QUEUES, concurrency=concurrency, **kwargs)
        self.python = python

    def command(self) -> list[str]:
        return [self.python, *super().command()[1:]]


class AntennaCeleryBeat(AntennaProcess, CeleryBeat):
    """`celery -A config.celery_app beat` with Antenna's DatabaseScheduler (CELERY_BEAT_SCHEDULER)."""

    def __init__(self, *, python: str, **kwargs):
        super().__init__(app=CELERY_APP, **kwargs)
        self.python = python

    def command(self) -> list[str]:
        return [self.python, *super().command()[1:]]
