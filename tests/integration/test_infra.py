"""Real servers, no mocks: every service's verbs, and nothing left running afterwards."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import psutil
import pytest

from harness.infra import (
    ManagedProcess,
    NatsServer,
    PostgresServer,
    RedisServer,
    ServiceNotReady,
    Stack,
    reap_orphans,
)
from harness.infra.base import TMP_PREFIX, TMP_ROOT
from harness.infra.ready import PortProbe

pytestmark = pytest.mark.integration


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def gone(pids: list[int], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def all_pids(service: ManagedProcess) -> list[int]:
    return [service.pid, *service.child_pids()]


async def stream_messages(url: str, create: bool = False) -> int:
    import nats

    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        if create:
            await js.add_stream(name="jobs", subjects=["jobs.>"])
            await js.publish("jobs.1", b"work")
        return (await js.stream_info("jobs")).state.messages
    finally:
        await nc.close()


def test_nats_stream_survives_restart_but_not_a_wipe():
    from nats.js.errors import NotFoundError

    with NatsServer() as server:
        url = server.url
        assert asyncio.run(stream_messages(url, create=True)) == 1
        server.restart()
        assert server.url == url
        assert asyncio.run(stream_messages(url)) == 1
        killed = server.pid
        server.kill()
        assert not server.is_running and gone([killed])
        server.start()  # crash recovery from the same store
        assert asyncio.run(stream_messages(url)) == 1
        server.restart(wipe=True)
        with pytest.raises(NotFoundError):
            asyncio.run(stream_messages(url))
        pids, tmpdir = all_pids(server), server.tmpdir
    assert gone(pids)
    assert not tmpdir.exists()


def test_nats_lose_writes_drops_a_streams_tail_or_rolls_back_to_the_mark():
    with NatsServer() as server:
        asyncio.run(stream_messages(server.url, create=True))
        server.mark_disk()  # the disk holds one message
        for _ in range(4):
            asyncio.run(publish_one(server.url))
        assert asyncio.run(stream_messages(server.url)) == 5
        before = server.pid
        assert server.lose_writes(stream="jobs", tail=2) == {"cut": 2}
        assert server.pid != before and asyncio.run(stream_messages(server.url)) == 3
        server.lose_writes()
        assert asyncio.run(stream_messages(server.url)) == 1


async def publish_one(url: str) -> None:
    import nats

    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        await nc.jetstream().publish("jobs.1", b"work")
    finally:
        await nc.close()


def test_paused_nats_times_out_and_answers_after_resume():
    import nats

    async def scenario(server: NatsServer) -> None:
        nc = await nats.connect(server.url, connect_timeout=2)
        js = nc.jetstream(timeout=0.3)
        try:
            server.pause()
            with pytest.raises(nats.errors.TimeoutError):
                await js.account_info()
            server.resume()
            await js.account_info()
        finally:
            await nc.close()

    with NatsServer() as server:
        asyncio.run(scenario(server))
        assert server.is_running and not server.paused


def test_redis_flushall_and_restart_on_the_same_port():
    with RedisServer() as server:
        client = server.client()
        client.set("job:1", "running")
        server.flushall()
        assert client.get("job:1") is None
        client.set("job:2", "running")
        port = server.port
        server.restart()
        assert server.port == port
        assert client.get("job:2") is None  # no persistence: a restart forgets everything
        client.close()
        pids = all_pids(server)
    assert gone(pids)


def test_postgres_database_is_usable_and_gone_afterwards():
    import psycopg

    with PostgresServer() as server:
        url = server.create_database("chaos")
        with psycopg.connect(url) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        pids = all_pids(server)
        assert len(pids) > 1  # postmaster plus its background processes
    assert gone(pids)


class Crashing(ManagedProcess):
    name = "crashing"

    def command(self) -> list[str]:
        return ["sh", "-c", "echo 'fatal: bad config'; exit 3"]

    def probe(self):
        return PortProbe(1)


def test_a_service_that_dies_while_starting_reports_its_log_and_cleans_up():
    service = Crashing(ready_timeout=10)
    with pytest.raises(ServiceNotReady, match="fatal: bad config"):
        with service:
            pass
    assert service.tmpdir is None and not service.is_running


def test_reap_orphans_kills_what_a_dead_owner_left_and_spares_live_owners():
    dead_owner = subprocess.Popen(["true"])
    dead_owner.wait()
    env = {**os.environ, "CHAOS_RUN_ID": "orphan-test", "CHAOS_OWNER_PID": str(dead_owner.pid)}
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env,
                              start_new_session=True)
    left_dir = TMP_ROOT / f"{TMP_PREFIX}orphan-test-{dead_owner.pid}-nats-x1y2z3"
    left_dir.mkdir()
    try:
        with RedisServer() as alive_and_owned:
            assert orphan.pid in reap_orphans()
            assert alive_and_owned.is_running and alive_and_owned.tmpdir.exists()
        assert gone([orphan.pid])
        assert not left_dir.exists()
    finally:
        orphan.kill()


def test_stack_serves_the_api_and_stops_everything():
    import httpx

    with Stack({"fixes": True}, web_workers=2) as stack:
        assert stack.env["CHAOS_FIXES"] == "on"
        assert stack.token
        assert httpx.get(f"{stack.api_url}/health/", timeout=5).status_code == 200
        jobs = httpx.get(f"{stack.api_url}/jobs/", headers={"Authorization": f"Token {stack.token}"}, timeout=5)
        assert jobs.status_code == 200
        stack.restart_component("web")
        stack.restart_component("celery_beat")  # readiness must wait for a new "Starting..." line
        assert httpx.get(f"{stack.api_url}/health/", timeout=5).status_code == 200
        pids = [pid for service in stack.services().values() for pid in all_pids(service)]
    assert gone(pids)


def test_stack_without_snapshot_migrates_and_a_wiped_database_comes_back_migrated():
    import httpx

    with Stack(celery=False, beat=False, reuse_migrated=False) as stack:
        assert "migrate_and_token" in stack.timings
        first_token = stack.token
        stack.restart_component("postgres", wipe=True)
        assert stack.token != first_token
        jobs = httpx.get(f"{stack.api_url}/jobs/", headers={"Authorization": f"Token {stack.token}"}, timeout=5)
        assert jobs.status_code == 200
        pids = [pid for service in stack.services().values() for pid in all_pids(service)]
        stack.stop(graceful=False)
        assert gone(pids)
