"""The three servers as Docker containers (testcontainers), with the verbs of ManagedProcess.

start / stop / kill / restart(wipe) / wipe / pause / resume / url, and a host port kept across restarts
so clients reconnect to the same address. The data lives in the container's writable layer: stop(keep_data)
or kill() followed by start() brings the same container back with its data (a crash recovery);
restart(wipe=True) replaces the container, so the server comes back empty (the ephemeral-store incident).

Which backend a run uses: `backend()` reads CHAOS_BACKEND (process | docker); `server_class(kind, backend)`
returns the class for "nats", "redis" or "postgres". `docker_problem()` says why Docker cannot be used here;
`require_docker()` raises DockerUnavailable with that reason.
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import TYPE_CHECKING

from harness.infra.base import RUN_ID, Service, free_port
from harness.infra.nats import NatsEndpoint
from harness.infra.postgres import SETTINGS, PostgresEndpoint
from harness.infra.redis import RedisEndpoint

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

BACKENDS = ("process", "docker")
LOCAL_DOCKER_HOSTS = ("localhost", "127.0.0.1", "::1")


def backend(value: str | None = None) -> str:
    chosen = (value or os.environ.get("CHAOS_BACKEND") or "process").strip().lower()
    if chosen not in BACKENDS:
        raise ValueError(f"the backend (CHAOS_BACKEND or the backend option) must be one of "
                         f"{', '.join(BACKENDS)}; got {chosen!r}")
    return chosen


def server_class(kind: str, chosen: str | None = None) -> type:
    """The class serving `kind` ("nats", "redis", "postgres") on the chosen backend."""
    from harness.infra.nats import NatsServer
    from harness.infra.postgres import PostgresServer
    from harness.infra.redis import RedisServer

    classes = {"process": {"nats": NatsServer, "redis": RedisServer, "postgres": PostgresServer},
               "docker": {"nats": NatsContainer, "redis": RedisContainer, "postgres": PostgresContainer}}
    return classes[backend(chosen)][kind]


def docker_problem(timeout: float = 3.0) -> str | None:
    """None when a Docker engine answers; otherwise why not, for a skip message."""
    try:
        import docker
    except ImportError:
        return "the docker Python package is not installed"
    try:
        client = docker.from_env(timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # no socket, permission denied, engine down: all mean "not here"
        return f"no Docker engine reachable ({type(exc).__name__}: {str(exc)[:160]})"
    return None


class DockerUnavailable(RuntimeError):
    """The docker backend was chosen, but no Docker engine can be used from here."""


def require_docker() -> None:
    problem = docker_problem()
    if problem is not None:
        raise DockerUnavailable(f"the docker backend needs a Docker engine: {problem}")


class ContainerService(Service):
    """Base class; a service sets name, default_image, ports (container port -> attribute holding the
    host port), command(), probe() and optionally environment()."""

    name = "container"
    default_image = ""
    ports: dict[int, str] = {}

    def __init__(self, *, image: str | None = None, ready_timeout: float = 60.0, stop_timeout: float = 10.0):
        self.image = image or os.environ.get(f"CHAOS_{self.name.upper()}_IMAGE") or self.default_image
        self.ready_timeout, self.stop_timeout = ready_timeout, stop_timeout
        self.host = "127.0.0.1"
        for attribute in self.ports.values():
            setattr(self, attribute, free_port())
        self.startup_seconds: float | None = None
        self.init_seconds: float | None = None  # the process backend's PostgreSQL reports this; kept for parity
        self.paused = False
        self._container: DockerContainer | None = None
        self._final_logs = ""

    # --- what a service defines --------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        return {}

    # --- verbs -------------------------------------------------------------------------------
    def start(self) -> ContainerService:
        if self.is_running:
            return self
        began = time.perf_counter()
        if self._container is None:
            self._container = self._new_container().start()
        else:
            self._wrapped().start()  # the same container: its data is still there
        self._await_ready(self.probe(), began)
        return self

    def stop(self, timeout: float | None = None, keep_data: bool = False) -> None:
        """Graceful stop; the container (and its data) is removed unless `keep_data`."""
        if self._container is None:
            return
        if self.paused:
            self.resume()
        self._wrapped().stop(timeout=int(self.stop_timeout if timeout is None else timeout))
        if not keep_data:
            self._final_logs = self.logs(tail=200)
            self._container.stop()  # testcontainers' stop removes the container and its volumes
            self._container = None

    close = stop

    def kill(self) -> None:
        """SIGKILL; the container and its data stay, so start() afterwards is a crash recovery."""
        if self._container is not None and self.is_running:
            if self.paused:
                self.resume()
            self._wrapped().kill()
            self._wrapped().wait(timeout=10)

    def restart(self, wipe: bool = False) -> ContainerService:
        self.stop(keep_data=not wipe)
        return self.start()

    def wipe(self) -> None:
        if self.is_running:
            raise RuntimeError(f"{self.name}: stop or kill it before wiping its data")
        if self._container is not None:
            self._container.stop()
            self._container = None

    def pause(self) -> None:
        if self.is_running and not self.paused:
            self._wrapped().pause()
            self.paused = True

    def resume(self) -> None:
        if self._container is not None and self.paused:
            self._wrapped().unpause()
        self.paused = False

    # --- state -------------------------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        if self._container is None:
            return False
        wrapped = self._wrapped()
        wrapped.reload()
        return wrapped.status in ("running", "paused")

    pid = None  # processes live inside the engine: no host pid to signal or meter

    def child_pids(self) -> list[int]:
        return []

    def logs(self, tail: int = 50) -> str:
        if self._container is None:
            return "\n".join(self._final_logs.splitlines()[-tail:])
        text = self._wrapped().logs(tail=tail).decode(errors="replace")
        return "".join(deque(text.splitlines(keepends=True), maxlen=tail))

    def __repr__(self) -> str:
        state = "paused" if self.paused else "running" if self.is_running else "stopped"
        return f"<{type(self).__name__} {self.image} {state}>"

    # --- internals ---------------------------------------------------------------------------
    def _new_container(self) -> DockerContainer:
        from testcontainers.core.container import DockerContainer

        container = DockerContainer(self.image, command=self.command(), env=self.environment(),
                                    labels={"chaos.run-id": RUN_ID, "chaos.service": self.name})
        local = container.get_docker_client().host() in LOCAL_DOCKER_HOSTS
        for container_port, attribute in self.ports.items():
            host_port = getattr(self, attribute)
            # loopback only when the engine runs here; a remote engine's ports are reached over its address
            container.ports[f"{container_port}/tcp"] = (self.host, host_port) if local else host_port
        if not local:
            self.host = container.get_docker_client().host()
        return container

    def _wrapped(self):
        return self._container.get_wrapped_container()


class NatsContainer(NatsEndpoint, ContainerService):
    name = "nats"
    default_image = "nats:2.10-alpine"
    ports = {4222: "port", 8222: "monitor_port"}
    store = "/data/jetstream"

    def command(self) -> list[str]:
        return ["nats-server", "-js", "-sd", self.store, "-m", "8222"]


class RedisContainer(RedisEndpoint, ContainerService):
    name = "redis"
    default_image = "redis:7-alpine"
    ports = {6379: "port"}

    def command(self) -> list[str]:
        return ["redis-server", "--save", "", "--appendonly", "no"]


class PostgresContainer(PostgresEndpoint, ContainerService):
    name = "postgres"
    default_image = "postgres:16-alpine"
    ports = {5432: "port"}
    db_user = password = "postgres"
    seed = None  # the process backend copies a migrated snapshot; a container always starts from initdb

    def command(self) -> list[str]:
        settings = {k: v for k, v in SETTINGS.items() if k not in ("unix_socket_directories",
                                                                   "dynamic_shared_memory_type")}
        return ["postgres", *(arg for key, value in settings.items() for arg in ("-c", f"{key}={value}"))]

    def environment(self) -> dict[str, str]:
        return {"POSTGRES_USER": self.db_user, "POSTGRES_PASSWORD": self.password}

