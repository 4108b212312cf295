"""The sandbox's Django app served by gunicorn, plus the environment every sandbox process gets."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping

from harness.infra.base import PROJECT_ROOT, ManagedProcess, free_port
from harness.infra.ready import HttpProbe, Probe

SETTINGS_MODULE = "harness.sandbox.settings"


def sandbox_environment(env: Mapping[str, str]) -> dict[str, str]:
    """`env` plus what a sandbox child needs to import the project from any working directory."""
    inherited = env.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    paths = dict.fromkeys([str(PROJECT_ROOT), *filter(None, inherited.split(os.pathsep))])
    return {"DJANGO_SETTINGS_MODULE": SETTINGS_MODULE, "PYTHONUNBUFFERED": "1", **env,
            "PYTHONPATH": os.pathsep.join(paths)}


class SandboxProcess(ManagedProcess):
    """A Python process of the sandbox project (web, Celery worker, Celery beat)."""

    def environment(self) -> dict[str, str]:
        return sandbox_environment(super().environment())

    @property
    def url(self) -> str:
        """The broker it consumes from or publishes to."""
        return self.extra_env.get("CHAOS_REDIS_URL", "")


@functools.cache
def _no_control_socket() -> list[str]:
    """Newer gunicorns open one control socket per user (~/.gunicorn/gunicorn.ctl): servers side by
    side would fight over it."""
    from gunicorn.config import KNOWN_SETTINGS

    return ["--no-control-socket"] if any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS) else []


class DjangoServer(SandboxProcess):
    """gunicorn with threaded workers: on two cores, a few processes with 4 threads each serve many
    short, mostly I/O-bound API calls better than many single-threaded sync workers."""

    name = "web"

    def __init__(self, *, workers: int = 3, threads: int = 4, host: str = "127.0.0.1",
                 app: str = "harness.sandbox.wsgi:application", health_path: str = "/api/v2/health/",
                 request_timeout: int = 60, **kwargs):
        super().__init__(**kwargs)
        self.workers, self.threads, self.host, self.app = workers, threads, host, app
        self.health_path, self.request_timeout = health_path, request_timeout
        self.port = free_port(host)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v2"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "gunicorn", self.app, "--bind", f"{self.host}:{self.port}",
                "--workers", str(self.workers), "--worker-class", "gthread", "--threads", str(self.threads),
                "--timeout", str(self.request_timeout), "--graceful-timeout", "5",
                "--preload",  # import Django once in the master and fork: ~1 s of CPU instead of 1 s per worker
                "--worker-tmp-dir", str(self.tmpdir), "--error-logfile", "-", "--log-level", "info",
                *_no_control_socket()]

    def probe(self) -> Probe:
        return HttpProbe(self.port, self.health_path, host=self.host, accept=lambda status: status == 200)
