"""The Docker backend (testcontainers): the same verbs as the process backend. Skips without an engine."""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from harness.infra import ManagedProcess, NatsServer, PostgresServer, RedisServer
from harness.infra.containers import (
    ContainerService,
    NatsContainer,
    PostgresContainer,
    RedisContainer,
    backend,
    docker_problem,
    server_class,
)

VERBS = ("start", "stop", "kill", "restart", "wipe", "pause", "resume", "url", "is_running", "logs")


def test_backend_comes_from_the_argument_then_chaos_backend(monkeypatch):
    monkeypatch.delenv("CHAOS_BACKEND", raising=False)
    assert backend() == "process"
    monkeypatch.setenv("CHAOS_BACKEND", "docker")
    assert backend() == "docker"
    assert backend("process") == "process"
    with pytest.raises(ValueError, match="CHAOS_BACKEND.*podman"):
        backend("podman")


def test_each_kind_has_a_class_per_backend():
    assert [server_class(kind, "process") for kind in ("nats", "redis", "postgres")] == [
        NatsServer, RedisServer, PostgresServer]
    assert [server_class(kind, "docker") for kind in ("nats", "redis", "postgres")] == [
        NatsContainer, RedisContainer, PostgresContainer]


@pytest.mark.parametrize("verb", VERBS)
def test_containers_offer_every_lifecycle_verb_of_a_process(verb):
    assert hasattr(ManagedProcess, verb) and hasattr(ContainerService, verb)
    if callable(getattr(ManagedProcess, verb)):
        process_args = list(inspect.signature(getattr(ManagedProcess, verb)).parameters)
        container_args = list(inspect.signature(getattr(ContainerService, verb)).parameters)
        assert process_args == container_args, verb


def test_docker_problem_is_none_or_a_reason():
    problem = docker_problem(timeout=1)
    assert problem is None or "Docker" in problem or "docker" in problem


@pytest.fixture(scope="module")
def engine():
    problem = docker_problem()
    if problem:
        pytest.skip(problem)


async def _stream_names(url: str) -> list[str]:
    import nats

    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        return [info.config.name for info in await nc.jetstream().streams_info()]
    finally:
        await nc.close()


async def _add_stream(url: str, name: str) -> None:
    import nats
    from nats.js.api import StreamConfig

    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        await nc.jetstream().add_stream(StreamConfig(name=name, subjects=[f"{name}.>"]))
    finally:
        await nc.close()


@pytest.mark.docker
@pytest.mark.integration
def test_nats_container_keeps_its_store_until_wiped(engine):
    with NatsContainer() as server:
        port = server.port
        asyncio.run(_add_stream(server.url, "kept"))
        server.kill()
        assert not server.is_running
        server.start()
        assert server.port == port  # clients reconnect to the same address
        assert asyncio.run(_stream_names(server.url)) == ["kept"]
        server.restart()
        assert asyncio.run(_stream_names(server.url)) == ["kept"]
        server.restart(wipe=True)
        assert asyncio.run(_stream_names(server.url)) == []


@pytest.mark.docker
@pytest.mark.integration
def test_paused_nats_container_stops_answering_until_resumed(engine):
    with NatsContainer() as server:
        server.pause()
        assert server.is_running and server.paused
        with pytest.raises(Exception):  # noqa: B017  (connect timeout or no servers: both mean "hung")
            asyncio.run(_stream_names(server.url))
        server.resume()
        assert asyncio.run(_stream_names(server.url)) == []


@pytest.mark.docker
@pytest.mark.integration
def test_redis_and_postgres_containers_serve_like_the_processes(engine):
    with RedisContainer() as redis_server, PostgresContainer() as postgres:
        with redis_server.client() as conn:
            conn.set("k", "v")
            assert conn.get("k") == b"v"
        url = postgres.create_database("chaos")
        assert url.endswith("/chaos")
        with postgres.connect("chaos", autocommit=True) as db:
            db.execute("create table t (x int)")
        postgres.restart()
        with postgres.connect("chaos") as db:
            assert db.execute("select count(*) from t").fetchone() == (0,)
        postgres.restart(wipe=True)
        assert postgres.create_database("chaos").endswith("/chaos")  # a fresh cluster: created again


# --- the pytest plugin's --chaos-backend, seen from a pytest run of its own --------------------------------

NEEDS_SERVERS = '''
def test_nats_answers(nats_server):
    assert nats_server.is_running and nats_server.url.startswith("nats://")


def test_stack_serves(stack):
    assert stack.backend == "docker" and stack.token
'''


def _run_pytest(tmp_path, *args: str, env: dict[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """Runs the tests above in a fresh interpreter; their outcome and message, by test name."""
    (tmp_path / "test_needs_servers.py").write_text(NEEDS_SERVERS)
    report = tmp_path / "report.xml"
    environ = {key: value for key, value in os.environ.items() if key != "CHAOS_BACKEND"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "nats_job_chaos",
                           f"--junitxml={report}", "-o", "junit_family=xunit1", *args, "test_needs_servers.py"],
                          cwd=tmp_path, env={**environ, **(env or {})}, capture_output=True, text=True,
                          timeout=600)
    assert report.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        found = [child for child in case if child.tag in ("skipped", "failure", "error")]
        outcomes[case.get("name")] = (found[0].tag, found[0].get("message", "")) if found else ("passed", "")
    return outcomes


@pytest.mark.parametrize("how", ["option", "environment"])
def test_fixtures_skip_naming_docker_or_run_on_an_engine(tmp_path, how):
    args, env = (["--chaos-backend", "docker"], {}) if how == "option" else ([], {"CHAOS_BACKEND": "docker"})
    outcomes = _run_pytest(tmp_path, *args, env=env)
    assert set(outcomes) == {"test_nats_answers", "test_stack_serves"}
    problem = docker_problem()
    for name, (outcome, message) in outcomes.items():
        if problem is None:  # an engine answers here: the containers really served the tests
            assert outcome == "passed", (name, message)
        else:
            assert outcome == "skipped", (name, outcome, message)
            assert "Docker engine" in message or "docker Python package" in message, message
            assert message.startswith("docker backend"), message


def test_an_unknown_backend_is_a_usage_error(tmp_path):
    (tmp_path / "test_needs_servers.py").write_text(NEEDS_SERVERS)
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "nats_job_chaos",
                           "test_needs_servers.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CHAOS_BACKEND": "podman"})
    assert done.returncode == 4, done.stdout + done.stderr  # pytest's ExitCode.USAGE_ERROR
    assert "podman" in done.stderr
