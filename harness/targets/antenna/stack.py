"""AntennaStack: a real Antenna checkout as a target — the harness's NATS (Antenna's 2.10), Redis and PostgreSQL,
plus Antenna's gunicorn, Celery worker and Celery beat under Antenna's own virtualenv.

Antenna's code runs as it is, from the checkout (or the patched copy the fixes need); the harness only adds
the modules in overlay/ beside it on the path: settings from CHAOS_* variables, control endpoints, bootstrap.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from harness.infra.base import PROJECT_ROOT, RUN_ID, TMP_ROOT, ManagedProcess
from harness.infra.nats import NatsServer
from harness.infra.postgres import PostgresServer
from harness.infra.redis import RedisServer
from harness.infra.snapshot import MigratedSnapshot
from harness.infra.stack import ServiceStack
from harness.settings import RunSettings
from harness.targets.antenna import records
from harness.targets.antenna.migrated import schema_key
from harness.targets.antenna.processes import AntennaCeleryBeat, AntennaCeleryWorker, AntennaWeb
from harness.targets.antenna.venv import antenna_venv

DATABASE = "antenna"
OVERLAY = Path(__file__).with_name("overlay")
# Antenna's own timings, compressed (see overlay/chaos_antenna_settings.py); the rest are RunSettings' defaults.
KNOBS = {"CHAOS_HEALTH_CHECK_INTERVAL": "2", "CHAOS_STALLED_MINUTES": "0.1"}
PIPELINE = "moth-detector"  # the slug simulated workers post results for (SimWorker's and Wire.create's default)
READY_TIMEOUT = 90.0  # Antenna imports a lot: on a busy two-core box a cold gunicorn takes well over 10 s


def seed_spec() -> dict:
    """What the bootstrap registers in Antenna: the algorithms the simulated workers name in their results."""
    from harness.workers.protocol import LABELS, SIM_CLASSIFIER, SIM_DETECTOR

    return {"pipeline": PIPELINE, "detector": SIM_DETECTOR.model_dump(), "classifier": SIM_CLASSIFIER.model_dump(),
            "labels": list(LABELS)}


class AntennaStack(ServiceStack):
    kind = "antenna"
    create_path = "/chaos/jobs/"
    anonymous_reads = True  # public projects: GET /jobs/ answers 200 without credentials (by design)
    records = records

    def __init__(self, checkout: str | Path, settings: Mapping[str, object] | None = None, *,
                 fixes_checkout: str | Path | None = None, web_workers: int = 2, celery_concurrency: int = 4,
                 celery: bool = True, beat: bool = True, reuse_migrated: bool = True):
        """checkout: Antenna's backend as given; fixes_checkout: the copy the processes run instead (fixes on)."""
        self.checkout = Path(checkout).expanduser().resolve()
        self.code = Path(fixes_checkout).expanduser().resolve() if fixes_checkout else self.checkout
        self.venv = antenna_venv(self.code)
        self.python = str(self.venv / "bin" / "python")
        # Production Antenna runs NATS 2.10: the server from Antenna's virtualenv, not the harness's newer one.
        self.nats = NatsServer(binary=str(self.venv / "bin" / "nats-server"))
        self.redis, self.postgres = RedisServer(), PostgresServer()
        run = RunSettings.of(settings if settings is not None else {"fixes": False})  # no settings: Antenna as it is
        self.settings = {**KNOBS, **run.env(), "CHAOS_DATABASE_URL": self.postgres.url_for(DATABASE),
                         "CHAOS_NATS_URL": self.nats.url, "CHAOS_REDIS_URL": self.redis.url}
        self.seed_spec = seed_spec()
        self.env = {**self.settings, "DJANGO_SETTINGS_MODULE": "chaos_antenna_settings", "PYTHONUNBUFFERED": "1",
                    "PYTHONDONTWRITEBYTECODE": "1",  # never write into the checkout (it may be read-only)
                    "PYTHONPATH": os.pathsep.join(map(str, (OVERLAY, self.code, PROJECT_ROOT))),
                    "CHAOS_SEED": json.dumps(self.seed_spec)}
        process = {"python": self.python, "env": self.env, "ready_timeout": READY_TIMEOUT}
        self.web = AntennaWeb(workers=web_workers, **process)
        self.celery_worker = AntennaCeleryWorker(concurrency=celery_concurrency, **process) if celery else None
        self.celery_beat = AntennaCeleryBeat(**process) if beat else None
        self.reuse_migrated = reuse_migrated
        self.token: str | None = None
        self.project_id: int | None = None
        self.timings: dict[str, float] = {}  # seconds per startup step, and "total"

    def start(self) -> AntennaStack:
        began = time.perf_counter()
        try:
            key = schema_key(self.code, self.venv, OVERLAY, self.settings, self.seed_spec)
            snapshot = MigratedSnapshot(key) if self.reuse_migrated else None
            seed = snapshot.token() if snapshot else None  # the snapshot keeps the seed's JSON as its "token"
            if seed is not None:
                self.postgres.seed = snapshot.pgdata
            self._start_together([self.nats, self.redis, self.postgres])
            if seed is None:
                self._timed("create_database", lambda: self.postgres.create_database(DATABASE))
                seed = self._timed("migrate_and_seed", self._bootstrap)
                if snapshot is not None:
                    self._timed("snapshot", lambda: self._save(snapshot, seed))
            self._use_seed(seed)
            self._start_together([self.web, self.celery_worker, self.celery_beat])
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.perf_counter() - began
        return self

    def restart_component(self, name: str, **kwargs) -> ManagedProcess:
        """e.g. restart_component("nats", wipe=True). A wiped PostgreSQL comes back migrated and seeded: from the
        snapshot (same token), or by running the bootstrap again (a new token)."""
        service = self.services()[name].restart(**kwargs)
        if service is self.postgres and kwargs.get("wipe") and self.postgres.seed is None:
            self.postgres.create_database(DATABASE)
            self._use_seed(self._bootstrap())
        return service

    # --- control endpoints (overlay/chaos_antenna_app/views.py) ------------------------------------------------

    def revoke(self, job: int) -> dict:
        """What Antenna's watchdog does (check_stale_jobs on a job idle past the rule); its entry for the job."""
        return self._control(f"/chaos/jobs/{job}/revoke/")

    def hold_progress_save(self, job: int, seconds: float) -> dict:
        """Arm a lost progress save: the job's next one waits `seconds` between read and write (overlay races.py)."""
        return self._control(f"/chaos/jobs/{job}/hold-progress-save/", {"seconds": seconds})

    def periodic(self, name: str, **kwargs) -> dict:
        """Run jobs_health_check, check_stale_jobs or mark_lost_images_failed in the web process now."""
        return self._control(f"/chaos/periodic/{name}/", kwargs)

    def _control(self, path: str, body: dict | None = None) -> dict:
        response = httpx.post(f"{self.api_url}{path}", json=body or {}, timeout=120.0,
                              headers={"Authorization": f"Token {self.token}"})
        response.raise_for_status()
        return response.json()

    # --- internals -------------------------------------------------------------------------------------------

    def _bootstrap(self) -> str:
        """migrate + seed in Antenna's interpreter; returns the seed's JSON line."""
        env = {**os.environ, **self.env, "CHAOS_RUN_ID": RUN_ID, "CHAOS_OWNER_PID": str(os.getpid())}
        done = subprocess.run([self.python, "-m", "chaos_antenna_bootstrap"], env=env, capture_output=True,
                              text=True, timeout=600, cwd=TMP_ROOT)
        if done.returncode != 0:
            raise RuntimeError(f"Antenna bootstrap failed ({done.returncode}):\n{done.stderr[-4000:]}")
        return done.stdout.strip().splitlines()[-1]

    def _use_seed(self, seed: str) -> None:
        values = json.loads(seed)
        self.token, self.project_id = values["token"], values["project"]
