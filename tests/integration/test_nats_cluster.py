"""A 3-node cluster from the nats-server wheel: routes through the harness's proxies, a partitioned node cut off
from the others (its clients' JetStream calls are unavailable, never "not found") and back after the heal, a
killed meta leader replaced. A JobQueue with replicas=3 makes a stream every node holds."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from fixes.jetstream import JobQueue, QueueUnavailable
from fixes.layout import QueueLayout
from harness.infra.nats_cluster import NatsCluster
from harness.waiting import poll_until

pytestmark = pytest.mark.integration
LAYOUT = QueueLayout(ack_wait=1.0, max_deliver=2, replicas=3)


@pytest.fixture(scope="module")
def cluster():
    with NatsCluster() as running:
        yield running


def _routed_peers(node) -> set[str]:
    routes = httpx.get(f"{node.monitor_url}/routez", timeout=5).json().get("routes") or []
    return {route.get("remote_name") or route.get("remote_id") for route in routes}


def _stream_replicas(node, stream: str) -> dict | None:
    jsz = httpx.get(f"{node.monitor_url}/jsz?accounts=true&streams=true", timeout=5).json()
    for account in jsz.get("account_details") or []:
        for detail in account.get("stream_detail") or []:
            if detail["name"] == stream:
                return detail
    return None


def test_routes_go_through_the_proxies_and_a_replicated_stream_lives_on_every_node(cluster):
    poll_until(lambda: all(len(_routed_peers(node)) == 2 for node in cluster.nodes), timeout=20, interval=0.2,
               what="a full mesh of routes")
    for (a, b), proxy in cluster.links.items():  # a pair's route was dialled by one side or both
        assert proxy.connections + cluster.links[b, a].connections > 0, f"no route {a}–{b} through the proxies"

    async def create() -> bool:
        queue = await JobQueue.connect(cluster.url, LAYOUT)
        try:
            await queue.create(7, None)
            assert await queue.publish(7, [(f"t{i}", b"x") for i in range(5)]) == 5
            return True
        except QueueUnavailable:  # "no suitable peers for placement" until the meta leader knows every node
            return False
        finally:
            await queue.close()

    poll_until(lambda: asyncio.run(create()), timeout=15, interval=0.5, what="job_7 placed on the three nodes")
    poll_until(lambda: all((_stream_replicas(node, "job_7") or {}).get("state", {}).get("messages") == 5
                           for node in cluster.nodes), timeout=20, interval=0.2, what="job_7 on every node")


def test_a_partitioned_node_is_cut_off_and_rejoins_after_the_heal(cluster):
    cut = cluster.node(cluster.partition("follower")["node"])
    others = [node for node in cluster.nodes if node is not cut]
    try:
        poll_until(lambda: not _routed_peers(cut) and all(len(_routed_peers(n)) == 1 for n in others), timeout=20,
                   interval=0.2, what="the partitioned node without routes")

        async def ask_the_cut_node():
            queue = await JobQueue.connect(cut.url, LAYOUT, api_timeout=1.0)
            try:
                await queue.create(8, None)  # needs the meta leader, which it cannot reach
            finally:
                await queue.close()

        with pytest.raises(QueueUnavailable):
            asyncio.run(ask_the_cut_node())
    finally:
        cluster.heal_partition()
    poll_until(lambda: all(len(_routed_peers(node)) == 2 for node in cluster.nodes), timeout=30, interval=0.2,
               what="the routes back after the heal")


def test_a_killed_meta_leader_is_replaced_and_rejoins(cluster):
    old = cluster.kill_node("meta-leader")["node"]
    try:
        new = cluster.wait_for_meta_leader(timeout=30)
        assert new != old
    finally:
        assert cluster.start_nodes()["started"] == [old]
    poll_until(lambda: all(len(_routed_peers(node)) == 2 for node in cluster.nodes), timeout=30, interval=0.2,
               what="the restarted node routed again")


def test_a_stream_whose_only_replica_died_is_told_apart_from_nats_not_answering(cluster):
    """An R1 stream on a killed node gets no answer while the server answers: the sweep's snapshot of it says
    `server_answering`, and the other jobs are still looked at (before, the first silent stream marked every job
    after it unreachable)."""
    single = QueueLayout(ack_wait=1.0, max_deliver=2, replicas=1)

    async def create():
        for job, layout in ((21, single), (22, LAYOUT)):
            queue = await JobQueue.connect(cluster.url, layout)
            try:
                await queue.create(job, None)
                await queue.publish(job, [("t0", b"x")])
            finally:
                await queue.close()

    asyncio.run(create())
    home = poll_until(lambda: cluster.stream_leader("job_21"), timeout=20, interval=0.2, what="job_21's node")
    cluster.node(home).kill()
    survivor = next(node for node in cluster.nodes if node.is_running)

    async def look():
        queue = await JobQueue.connect(survivor.url, LAYOUT, api_timeout=1.0)
        try:
            return await queue.snapshots({21: None, 22: None}, timeout=2.0)
        finally:
            await queue.close()

    try:
        cluster.wait_for_meta_leader(timeout=30)
        snaps = poll_until(lambda: (s := asyncio.run(look()))[22].reachable and s, timeout=30, interval=0.5,
                           what="job_22 answered after the election")
        assert not snaps[21].reachable and snaps[21].server_answering and snaps[21].unavailable
        assert snaps[22].stream_exists and snaps[22].messages == 1
    finally:
        assert cluster.start_nodes()["started"] == [home]
