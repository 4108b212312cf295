from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from harness.client import SandboxClient


def chaos_settings(options, **overrides) -> dict[str, str]:
    """CHAOS_* settings from the command line, then the overrides (short names or CHAOS_* names)."""
    from harness.settings import RunSettings

    return RunSettings.of({"fixes": options.getoption("--chaos-fixes"), "ack_wait": options.getoption("--chaos-ack-wait"),
                           "max_deliver": options.getoption("--chaos-max-deliver"),
                           "sweep_interval": options.getoption("--chaos-sweep-interval")}, **overrides).env()


def chaos_backend(config) -> str:
    """--chaos-backend, else CHAOS_BACKEND, else "process"."""
    from harness.infra.containers import backend

    return backend(config.getoption("--chaos-backend"))


_docker_problem = pytest.StashKey[str | None]()


def servers_backend(config) -> str:
    """The backend the server fixtures use; skips the test when it is docker and no engine answers."""
    chosen = chaos_backend(config)
    if chosen == "docker":
        if _docker_problem not in config.stash:  # asked once per session: a missing engine can take seconds
            from harness.infra.containers import docker_problem

            config.stash[_docker_problem] = docker_problem()
        if config.stash[_docker_problem] is not None:
            pytest.skip(f"docker backend (--chaos-backend or CHAOS_BACKEND): {config.stash[_docker_problem]}")
    return chosen


def _server(config, kind: str):
    from harness.infra.containers import server_class

    return server_class(kind, servers_backend(config))()


@pytest.fixture(scope="session")
def nats_server(pytestconfig):
    with _server(pytestconfig, "nats") as server:
        yield server


@pytest.fixture(scope="session")
def redis_server(pytestconfig):
    with _server(pytestconfig, "redis") as server:
        yield server


@pytest.fixture(scope="session")
def postgres(pytestconfig):
    with _server(pytestconfig, "postgres") as server:
        yield server


@pytest.fixture(scope="session")
def stack_factory(request):
    """`stack_factory(fixes="off", ack_wait=1)` → a running Stack, shared by tests asking the same settings."""
    from harness.infra import Stack

    backend = servers_backend(request.config)
    stacks: dict[tuple, Stack] = {}

    def make(**overrides) -> Stack:
        settings = chaos_settings(request.config, **overrides)
        key = tuple(sorted(settings.items()))
        if key not in stacks:
            stack = Stack(settings=settings, web_workers=request.config.getoption("--chaos-web-workers"),
                          backend=backend)
            stacks[key] = stack  # registered before start: a half-started stack is stopped too
            stack.start()
        return stacks[key]

    yield make
    for stack in reversed(list(stacks.values())):
        stack.stop()


@pytest.fixture(scope="session")
def stack(stack_factory):
    """The whole stack with the command-line settings (fixes on by default)."""
    return stack_factory()


@dataclass
class Sandbox:
    """A live sandbox: its API URL, a worker token, an HTTP client, and the stack underneath."""

    stack: object
    client: SandboxClient

    @property
    def api_url(self) -> str:
        return self.stack.api_url

    @property
    def token(self) -> str:
        return self.stack.token

    @property
    def settings(self) -> dict[str, str]:
        return self.stack.settings


@pytest.fixture
def sandbox(request, stack_factory):
    marker = request.node.get_closest_marker("stack")
    stack = stack_factory(**(marker.kwargs if marker else {}))
    with SandboxClient(stack.api_url, stack.token) as client:
        yield Sandbox(stack=stack, client=client)


@pytest.fixture
def sandbox_db(sandbox, django_db_blocker):
    """The sandbox's own database through the Django ORM of this process (committed, not rolled back).

    Also points this process's NATS/Redis settings and fixes switches at the same stack, so ORM saves
    fire the same transition hooks the sandbox runs.
    """
    from harness.sandbox.connect import bind_to_stack

    with django_db_blocker.unblock(), bind_to_stack(sandbox.stack):
        yield sandbox


@pytest.fixture
def worker(sandbox):
    """`worker(kind="healthy", count=2, until_idle=True, duration=30)` runs simulated workers to the end.

    Returns their summary. Uses the sandbox's API URL and token; pipelines default to the sandbox's.
    """
    from harness.workers import run_workers

    def run(kind: str = "healthy", count: int = 1, **kwargs):
        kwargs.setdefault("pipelines", ["moth-detector"])
        return asyncio.run(run_workers(sandbox.api_url, sandbox.token, kind=kind, count=count, **kwargs))

    return run
