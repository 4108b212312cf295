"""Which backend the servers run on: --chaos-backend, else CHAOS_BACKEND, else process."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from harness import state
from harness.infra import NatsServer, PostgresServer, RedisServer, Stack, containers
from harness.infra.containers import DockerUnavailable, NatsContainer, PostgresContainer, RedisContainer
from harness.pytest_plugin.fixtures import chaos_backend, servers_backend

NO_ENGINE = "no Docker engine reachable (FileNotFoundError: no socket)"


def config(option: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(getoption=lambda name: {"--chaos-backend": option}[name], stash=pytest.Stash())


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv("CHAOS_BACKEND", raising=False)
    return monkeypatch


@pytest.fixture
def engine_calls(monkeypatch) -> list[str]:
    """Replaces docker_problem: records each call and answers "no engine"."""
    calls = []

    def problem(timeout: float = 3.0) -> str:
        calls.append("ping")
        return NO_ENGINE

    monkeypatch.setattr(containers, "docker_problem", problem)
    return calls


def test_the_option_wins_then_the_environment_then_process(no_env):
    assert chaos_backend(config()) == "process"
    no_env.setenv("CHAOS_BACKEND", "docker")
    assert chaos_backend(config()) == "docker"
    assert chaos_backend(config("process")) == "process"
    no_env.setenv("CHAOS_BACKEND", " Docker ")
    assert chaos_backend(config()) == "docker"


def test_an_unknown_backend_in_the_environment_is_refused(no_env):
    no_env.setenv("CHAOS_BACKEND", "podman")
    with pytest.raises(ValueError, match="CHAOS_BACKEND"):
        chaos_backend(config())


def test_the_process_backend_never_asks_for_docker(no_env, engine_calls):
    assert servers_backend(config()) == "process"
    assert engine_calls == []


def test_the_docker_backend_skips_with_the_reason_and_asks_once(no_env, engine_calls):
    options = config("docker")
    for _ in range(3):
        with pytest.raises(pytest.skip.Exception, match="docker.*no Docker engine reachable"):
            servers_backend(options)
    assert engine_calls == ["ping"]


def test_the_docker_backend_goes_ahead_when_an_engine_answers(no_env, monkeypatch):
    monkeypatch.setattr(containers, "docker_problem", lambda timeout=3.0: None)
    assert servers_backend(config("docker")) == "docker"


def test_a_stack_takes_its_servers_from_the_backend(no_env):
    stack = Stack(settings={"fixes": False})
    assert (stack.backend, stack.reuse_migrated) == ("process", True)
    assert [type(s) for s in (stack.nats, stack.redis, stack.postgres)] == [NatsServer, RedisServer, PostgresServer]
    no_env.setenv("CHAOS_BACKEND", "docker")
    stack = Stack(settings={"fixes": False})
    assert (stack.backend, stack.reuse_migrated) == ("docker", False)  # no data dir to seed from a snapshot
    assert [type(s) for s in (stack.nats, stack.redis, stack.postgres)] == [
        NatsContainer, RedisContainer, PostgresContainer]
    assert stack.postgres.seed is None
    assert stack.settings["CHAOS_DATABASE_URL"] == stack.postgres.url_for("chaos")
    assert stack.env["CHAOS_NATS_URL"] == stack.nats.url
    assert Stack(backend="process").backend == "process"


def test_a_docker_stack_without_an_engine_says_so_and_starts_nothing(no_env, engine_calls):
    stack = Stack(backend="docker")
    with pytest.raises(DockerUnavailable, match="Docker engine"):
        stack.start()
    assert not any(service.is_running for service in stack.services().values())


def test_a_stack_follows_servers_that_move_to_an_engine_address(no_env):
    stack = Stack(backend="docker")
    stack.nats.host = stack.redis.host = stack.postgres.host = "10.0.0.5"  # a remote engine's address
    stack._follow_server_urls()
    for name in ("CHAOS_NATS_URL", "CHAOS_REDIS_URL", "CHAOS_DATABASE_URL"):
        assert "10.0.0.5" in stack.settings[name]
        assert stack.env[name] == stack.web.extra_env[name] == stack.celery_worker.extra_env[name] == \
            stack.settings[name]


def test_the_state_file_names_the_sandbox_database(no_env):
    stack = Stack()
    info = state.describe(stack, {"CHAOS_FIXES": "on"})
    assert info["sandbox_database_url"] == stack.settings["CHAOS_DATABASE_URL"]
    assert info["sandbox_database_url"].endswith("/chaos")
    assert info["database_url"].endswith("/postgres")
    assert info["backend"] == "process"


def test_chaos_up_on_docker_without_an_engine_exits_with_the_reason(no_env, engine_calls, tmp_path):
    from harness.cli import app

    no_env.setenv("CHAOS_STATE_FILE", str(tmp_path / "stack.json"))
    result = CliRunner().invoke(app, ["up", "--backend", "docker"])
    assert result.exit_code == 2
    assert "no Docker engine reachable" in result.output
    assert not (tmp_path / "stack.json").exists()
    result = CliRunner().invoke(app, ["up", "--backend", "podman"])
    assert result.exit_code == 2 and "podman" in result.output
