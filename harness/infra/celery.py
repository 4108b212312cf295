"""The sandbox's Celery worker and Celery beat."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

from harness.infra.base import RUN_ID
from harness.infra.django import SandboxProcess
from harness.infra.ready import LogProbe, Probe

CELERY_APP = "harness.sandbox.celery_app:app"
_worker_numbers = itertools.count(1)


class CeleryWorker(SandboxProcess):
    """Prefork worker; no gossip/mingle/heartbeat, so startup does not wait on other nodes."""

    name = "celery_worker"

    def __init__(self, *, concurrency: int = 2, queues: tuple[str, ...] = ("celery",),
                 pool: str = "prefork", app: str = CELERY_APP, **kwargs):
        super().__init__(**kwargs)
        self.concurrency, self.queues, self.pool, self.app = concurrency, queues, pool, app
        self.node_name = f"worker{next(_worker_numbers)}-{RUN_ID}@%h"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "celery", "-A", self.app, "worker", "--pool", self.pool,
                "--concurrency", str(self.concurrency), "-Q", ",".join(self.queues), "-n", self.node_name,
                "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"]

    def probe(self) -> Probe:
        return LogProbe(self.log_path, " ready.")


class CeleryBeat(SandboxProcess):
    name = "celery_beat"

    def __init__(self, *, app: str = CELERY_APP, **kwargs):
        super().__init__(**kwargs)
        self.app = app

    @property
    def data_dir(self) -> Path:
        return self.tmpdir / "schedule"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "celery", "-A", self.app, "beat", "-s", str(self.data_dir / "beat"),
                "-l", "INFO"]

    def prepare(self) -> None:
        self.data_dir.mkdir(exist_ok=True)

    def probe(self) -> Probe:
        return LogProbe(self.log_path, "beat: Starting...")
