"""Stack: NATS + Redis + PostgreSQL + the sandbox (gunicorn, Celery worker, Celery beat), wired up."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from harness.infra import containers
from harness.infra.base import RUN_ID, TMP_ROOT, ManagedProcess
from harness.infra.celery import CeleryBeat, CeleryWorker
from harness.infra.django import DjangoServer, sandbox_environment
from harness.infra.snapshot import MigratedSnapshot, schema_key
from harness.settings import RunSettings
from harness.targets import sandbox as sandbox_records

DATABASE = "chaos"
CLUSTER_TOPOLOGIES = ("cluster3", "cluster3-netns")  # the second: nodes in network namespaces (root)
NATS_TOPOLOGIES = ("single", *CLUSTER_TOPOLOGIES)


class ServiceStack:
    """What every stack shares: the servers and the host's processes (web, Celery worker and beat), started and
    stopped tier by tier. Subclasses set nats, redis, postgres, web, celery_worker, celery_beat and timings."""

    @property
    def api_url(self) -> str:
        return self.web.api_url

    def services(self) -> dict[str, ManagedProcess]:
        every = {"nats": self.nats, "redis": self.redis, "postgres": self.postgres, "web": self.web,
                 "celery_worker": self.celery_worker, "celery_beat": self.celery_beat}
        return {name: service for name, service in every.items() if service is not None}

    def stop(self, graceful: bool = True) -> None:
        """Stop the host's processes, then the servers, each tier in parallel (a warm Celery shutdown
        alone takes ~2.5 s). graceful=False SIGKILLs everything first: a throwaway stack's teardown."""
        if not graceful:
            for service in self.services().values():
                service.kill()
        errors = [*self._stop_together([self.celery_beat, self.celery_worker, self.web]),
                  *self._stop_together([self.postgres, self.redis, self.nats])]
        if errors:
            raise errors[0]

    def _save(self, snapshot: MigratedSnapshot, token: str) -> None:
        self.postgres.stop(keep_data=True)  # a copy is only consistent from a cleanly stopped cluster
        snapshot.save(self.postgres.data_dir, token)
        self.postgres.seed = snapshot.pgdata
        self.postgres.start()

    def __enter__(self):
        return self.start()  # start() tears down what it started if it fails

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _timed(self, step: str, action: Callable):
        began = time.perf_counter()
        result = action()
        self.timings[step] = time.perf_counter() - began
        return result

    @staticmethod
    def _stop_together(services: list[ManagedProcess | None]) -> list[BaseException]:
        services = [service for service in services if service is not None]
        with ThreadPoolExecutor(max(1, len(services))) as pool:
            futures = [pool.submit(service.stop) for service in services]
        return [future.exception() for future in futures if future.exception() is not None]

    def _start_together(self, services: list[ManagedProcess | None]) -> None:
        services = [service for service in services if service is not None]
        with ThreadPoolExecutor(max(1, len(services))) as pool:
            futures = [pool.submit(service.start) for service in services]
        for service, future in zip(services, futures, strict=True):
            future.result()  # re-raises the first failure
            self.timings[service.name] = service.startup_seconds


def nats_topology(value: str | None = None) -> str:
    chosen = (value or os.environ.get("CHAOS_NATS") or "single").strip().lower()
    if chosen not in NATS_TOPOLOGIES:
        raise ValueError(f"CHAOS_NATS / --nats must be one of {', '.join(NATS_TOPOLOGIES)}, got {chosen!r}")
    return chosen


def is_cluster(topology: str | None = None) -> bool:
    """Whether the topology (default: CHAOS_NATS) is a 3-node cluster, on loopback or in namespaces."""
    return nats_topology(topology) in CLUSTER_TOPOLOGIES


def _cluster(backend: str, topology: str):
    from harness.infra.nats_cluster import NatsCluster
    from harness.infra.nats_netns import NetnsNatsCluster

    if backend != "process":
        raise ValueError("a NATS cluster runs on the process backend only (three nats-server processes)")
    return NetnsNatsCluster() if topology == "cluster3-netns" else NatsCluster()


class Stack(ServiceStack):
    """The sandbox target (harness/targets/base.py). backend: "process" (local servers from wheels) or
    "docker" (containers); default CHAOS_BACKEND, else "process". The sandbox (gunicorn, Celery) always runs
    as local processes."""

    kind = "sandbox"
    records = sandbox_records
    create_path = "/jobs/"
    anonymous_reads = False

    def __init__(self, settings: Mapping[str, object] | None = None, *, web_workers: int = 3,
                 celery: bool = True, beat: bool = True, reuse_migrated: bool = True, backend: str | None = None,
                 nats: str | None = None):
        """nats: "single" (one nats-server), "cluster3" (three clustered nodes, streams at replicas 3) or
        "cluster3-netns" (the same, each node in a network namespace; root only); default the settings'
        CHAOS_NATS, else the environment's, else single."""
        self.backend = containers.backend(backend)
        run_settings = RunSettings.of(settings)
        self.topology = nats_topology(nats or run_settings.extra.get("CHAOS_NATS"))
        self.nats, self.redis, self.postgres = (containers.server_class(kind, self.backend)()
                                                for kind in ("nats", "redis", "postgres"))
        if self.topology in CLUSTER_TOPOLOGIES:
            self.nats = _cluster(self.backend, self.topology)
            run_settings = RunSettings.of(run_settings, nats=self.topology, stream_replicas=3)
        self.settings = {**self._server_urls(), **run_settings.env()}
        self.env = sandbox_environment({**os.environ, **self.settings})  # what every sandbox process sees
        self.web = DjangoServer(env=self.env, workers=web_workers)
        self.celery_worker = CeleryWorker(env=self.env) if celery else None
        self.celery_beat = CeleryBeat(env=self.env) if beat else None
        # start from a saved migrated cluster (see snapshot.py): a copied data dir, so processes only
        self.reuse_migrated = reuse_migrated and self.backend == "process"
        self.token: str | None = None
        self._outsider: str | None = None
        self.timings: dict[str, float] = {}  # seconds per startup step, and "total"

    def start(self) -> Stack:
        began = time.perf_counter()
        if self.backend == "docker":
            containers.require_docker()  # a clear reason instead of the first container's stack trace
        try:
            snapshot = MigratedSnapshot(schema_key(self.settings, DATABASE)) if self.reuse_migrated else None
            self.token = snapshot.token() if snapshot else None
            if self.token is not None:
                self.postgres.seed = snapshot.pgdata
            self._start_together([self.nats, self.redis, self.postgres])
            self._follow_server_urls()
            if self.token is None:
                self._timed("create_database", lambda: self.postgres.create_database(DATABASE))
                self.token = self._timed("migrate_and_token", self._migrate_and_token)
                if snapshot is not None:
                    self._timed("snapshot", lambda: self._save(snapshot, self.token))
            self._start_together([self.web, self.celery_worker, self.celery_beat])
        except BaseException:
            self.stop()
            raise
        self.timings["postgres_init"] = self.postgres.init_seconds or 0.0
        self.timings["total"] = time.perf_counter() - began
        return self

    def restart_component(self, name: str, **kwargs) -> ManagedProcess:
        """e.g. restart_component("nats", wipe=True). A wiped PostgreSQL comes back migrated, with the
        same token when it is seeded from the snapshot, otherwise with a new one."""
        service = self.services()[name].restart(**kwargs)
        if service is self.postgres and kwargs.get("wipe") and self.postgres.seed is None:
            self.postgres.create_database(DATABASE)
            self.token = self._migrate_and_token()
        if service is self.postgres and kwargs.get("wipe"):
            self._outsider = None  # its user went with the data
        return service

    def _server_urls(self) -> dict[str, str]:
        return {"CHAOS_DATABASE_URL": self.postgres.url_for(DATABASE), "CHAOS_NATS_URL": self.nats.url,
                "CHAOS_REDIS_URL": self.redis.url}

    def _follow_server_urls(self) -> None:
        """A container on a remote Docker engine is reached at the engine's address, known once it runs:
        hand the sandbox processes the URLs the servers really have (a no-op for local servers)."""
        urls = self._server_urls()
        if all(self.settings[name] == url for name, url in urls.items()):
            return
        self.settings.update(urls)
        self.env.update(urls)
        for process in (self.web, self.celery_worker, self.celery_beat):
            if process is not None:
                process.extra_env.update(urls)

    def _migrate_and_token(self) -> str:
        """`migrate --noinput` then `chaos_token` in one interpreter: Django's setup costs ~1 s of CPU."""
        script = ("import django; django.setup(); from django.core.management import call_command; "
                  "call_command('migrate', interactive=False, verbosity=0); call_command('chaos_token')")
        return self.python("-c", script).strip().splitlines()[-1]

    def outsider_token(self) -> str:
        """A valid token of a user who is a member of no project: to it every job of a run is another
        project's (the harness's own token is a superuser's, like the one it uses on Antenna)."""
        if self._outsider is None:
            self._outsider = self.manage("chaos_token", "--username", "outsider", "--member-only").strip().splitlines()[-1]
        return self._outsider

    def revoke(self, job: int) -> None:
        """What Antenna's watchdog did in the incident: REVOKED, nothing else."""
        self.manage("chaos_revoke", str(job))

    def manage(self, *args: str, timeout: float = 120.0) -> str:
        """Run `python -m django <args>` with the stack's environment; returns its stdout."""
        return self.python("-m", "django", *args, timeout=timeout)

    def python(self, *args: str, timeout: float = 120.0) -> str:
        env = {**self.env, "CHAOS_RUN_ID": RUN_ID, "CHAOS_OWNER_PID": str(os.getpid())}
        done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                              timeout=timeout, cwd=TMP_ROOT)
        if done.returncode != 0:
            raise RuntimeError(f"python {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
        return done.stdout
