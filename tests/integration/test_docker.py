"""docker-compose.chaos.yml and docker/Dockerfile: static checks everywhere, the real stack where Docker runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from fixes.config import FixesConfig
from harness.infra.base import free_port

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the compose file")

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.chaos.yml"
SERVERS = {"nats", "redis", "postgres"}
SANDBOX = {"web", "celery-worker", "celery-beat"}
ONE_SHOT = {"migrate"}
LOCUST = {"locust-master", "locust-worker"}
NOTHING_WAITS_ON = {"locust-worker"}  # the only long-running service without a healthcheck
REQUIRED_ENV = {"CHAOS_DATABASE_URL": "postgres:5432", "CHAOS_NATS_URL": "nats:4222", "CHAOS_REDIS_URL": "redis:6379"}


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def chaos_names_the_sandbox_reads() -> set[str]:
    settings = (ROOT / "harness/sandbox/settings.py").read_text()
    names = {f"CHAOS_{name}" for name in re.findall(r'_env\("([A-Z_]+)"', settings)}
    names |= {"CHAOS_FIXES", "CHAOS_SWEEP_INTERVAL", "CHAOS_STUCK_GRACE", "CHAOS_STUCK_ACTION"}
    return names | {f"CHAOS_FIX_{switch.upper()}" for switch in FixesConfig.switches()}


def test_every_service_is_defined(services):
    assert set(services) == SERVERS | SANDBOX | ONE_SHOT | LOCUST


def test_long_running_services_have_healthchecks(services):
    for name in set(services) - ONE_SHOT - NOTHING_WAITS_ON:
        check = services[name].get("healthcheck") or {}
        assert check.get("test"), f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_dependencies_wait_for_health_or_completion(services):
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on without conditions"
        for dependency, rule in depends.items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            expected = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert rule == {"condition": expected}, f"{name} -> {dependency}: {rule}"
    for name in SANDBOX:
        assert set(services[name]["depends_on"]) == SERVERS | ONE_SHOT, name
    assert set(services["migrate"]["depends_on"]) == {"postgres"}
    assert "web" in services["locust-master"]["depends_on"]
    assert "locust-master" in services["locust-worker"]["depends_on"]


def test_nats_keeps_its_jetstream_store_on_a_tmpfs(services):
    nats = services["nats"]
    command = nats["command"]
    assert "-js" in command
    store = command[command.index("-sd") + 1]
    tmpfs = [v["target"] for v in nats.get("volumes", []) if isinstance(v, dict) and v.get("type") == "tmpfs"]
    tmpfs += [entry.split(":")[0] for entry in nats.get("tmpfs", [])]
    assert any(store == target or store.startswith(target.rstrip("/") + "/") for target in tmpfs), (store, tmpfs)
    assert not any(isinstance(v, str) and v.split(":")[-1].startswith(store) for v in nats.get("volumes", [])), \
        "a named volume or bind mount would keep the store across restarts"


def test_sandbox_processes_share_one_chaos_environment(services):
    known = chaos_names_the_sandbox_reads()
    environments = [services[name]["environment"] for name in SANDBOX | ONE_SHOT]
    assert all(env == environments[0] for env in environments)
    env = environments[0]
    for name, host in REQUIRED_ENV.items():
        assert host in env[name], (name, env[name])
    unknown = {name for name in env if name.startswith("CHAOS_")} - known
    assert not unknown, f"CHAOS_* names the sandbox never reads: {unknown}"
    assert env["DJANGO_SETTINGS_MODULE"] == "harness.sandbox.settings"


def test_locust_gets_the_token_written_by_migrate(services):
    assert "/run/chaos/token" in " ".join(services["migrate"]["command"])
    for name in LOCUST:
        assert services[name]["environment"]["CHAOS_TOKEN_FILE"] == "/run/chaos/token"
        assert any(str(v).startswith("token:/run/chaos") for v in services[name]["volumes"])
    assert "harness/load/locustfile.py" in services["locust-master"]["command"]


def test_dockerfile_builds_the_project_on_python_311_slim(services):
    builds = {services[name]["build"]["dockerfile"] for name in SANDBOX | ONE_SHOT | LOCUST}
    assert builds == {"docker/Dockerfile"}
    dockerfile = (ROOT / "docker/Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.M)
    assert re.search(r"pip install -e '\.\[(dev|harness)\]'", dockerfile)


def _compose_cli() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return None


def test_docker_compose_accepts_the_file():
    """`docker compose config` only parses and interpolates: it needs the CLI plugin, not an engine."""
    cli = _compose_cli()
    if cli is None:
        pytest.skip("the docker compose CLI plugin is not installed here")
    done = subprocess.run([*cli, "-f", str(COMPOSE), "config", "--quiet"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr


def _engine_problem() -> str | None:
    if _compose_cli() is None:
        return "the docker compose CLI plugin is not installed here"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    if info.returncode != 0:
        return f"no Docker engine reachable (`docker info` failed: {info.stderr.strip().splitlines()[-1:]})"
    return None


@pytest.mark.docker
@pytest.mark.integration
@pytest.mark.timeout(1200)
def test_compose_stack_runs_a_job_and_a_nats_restart_loses_its_stream():
    problem = _engine_problem()
    if problem:
        pytest.skip(problem)
    from harness.client import SandboxClient
    from harness.workers.protocol import success_result

    port = free_port()
    compose = [*_compose_cli(), "-p", f"chaos-test-{uuid.uuid4().hex[:8]}", "-f", str(COMPOSE)]
    env = {"CHAOS_WEB_PORT": str(port), "CHAOS_NATS_PORT": str(free_port()),
           "CHAOS_NATS_MONITOR_PORT": str(free_port()), "CHAOS_SWEEP_INTERVAL": "1", "CHAOS_ACK_WAIT": "2"}
    run_env = {**os.environ, **env}
    subprocess.run([*compose, "up", "-d", "--build", "--wait", *SANDBOX], check=True, cwd=ROOT, env=run_env,
                   timeout=900)
    try:
        token = subprocess.run([*compose, "exec", "-T", "web", "cat", "/run/chaos/token"], check=True, cwd=ROOT,
                               env=run_env, capture_output=True, text=True).stdout.strip()
        with SandboxClient(f"http://127.0.0.1:{port}/api/v2", token) as client:
            job_id = client.create_job(images=20, start=True)["id"]
            client.wait_for_status(job_id, "STARTED", timeout=60)
            while tasks := client.http.post(f"/jobs/{job_id}/tasks/", json={"batch_size": 16}).json()["tasks"]:
                results = [{"reply_subject": t["reply_subject"], "result": success_result(t)} for t in tasks]
                assert client.http.post(f"/jobs/{job_id}/result/", json={"results": results}).status_code == 200
            client.wait_for_status(job_id, "SUCCESS", timeout=60)

            lost = client.create_job(images=5, start=True)["id"]
            client.wait_for_status(lost, "STARTED", timeout=60)
            subprocess.run([*compose, "restart", "nats"], check=True, cwd=ROOT, env=run_env, timeout=120)
            client.wait_for_status(lost, "FAILURE", timeout=60)  # the sweep: the stream vanished with the store
            reasons = " ".join(line["message"] for line in client.job(lost)["logs"] if line["level"] == "ERROR")
            assert "is gone" in reasons, reasons
    finally:
        subprocess.run([*compose, "down", "-v", "--remove-orphans"], cwd=ROOT, env=run_env, timeout=300)
