"""The 3-node cluster with every node in a network namespace of the run's own (root only; skipped otherwise, saying
why): nodes at their namespace's address with routes straight to each other, a partition that is a black hole (a
cut node's JetStream calls are unavailable, never "not found", while the others carry on; back after the heal),
kill -9 and SIGSTOP hitting the real server, and no namespace, veth or bridge left behind, also after the run that
built them was killed."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import subprocess
import sys

import httpx
import psutil
import pytest

from fixes.jetstream import JobQueue, QueueUnavailable
from fixes.layout import QueueLayout
from harness.infra import netns
from harness.waiting import poll_until

pytestmark = [pytest.mark.integration, pytest.mark.cluster]  # run with --chaos-nats cluster3 or cluster3-netns
LAYOUT = QueueLayout(ack_wait=1.0, max_deliver=2, replicas=3)
AVAILABLE, WHY = netns.available()


@pytest.fixture(scope="module")
def cluster():
    if not AVAILABLE:
        pytest.skip(f"network namespaces: {WHY}")
    from harness.infra.nats_netns import NetnsNatsCluster

    with NetnsNatsCluster() as running:
        yield running
    assert running.network.leftovers() == []


def _routed_peers(node) -> set[str]:
    routes = httpx.get(f"{node.monitor_url}/routez", timeout=5).json().get("routes") or []
    return {route.get("remote_name") or route.get("remote_id") for route in routes}


def _messages(node, stream: str) -> int | None:
    jsz = httpx.get(f"{node.monitor_url}/jsz?accounts=true&streams=true", timeout=5).json()
    for account in jsz.get("account_details") or []:
        for detail in account.get("stream_detail") or []:
            if detail["name"] == stream:
                return detail["state"]["messages"]
    return None


def _on(url: str, action):
    async def run():
        queue = await JobQueue.connect(url, LAYOUT, api_timeout=1.0)
        try:
            return await action(queue)
        finally:
            await queue.close()

    return asyncio.run(run())


def _placed(url: str, job: int) -> bool:
    try:
        _on(url, lambda queue: queue.create(job, None))
        return True
    except QueueUnavailable:  # "no suitable peers for placement" until the meta leader knows every node
        return False


def test_nodes_run_in_their_namespaces_routed_to_each_other(cluster):
    ours = os.stat("/proc/self/ns/net").st_ino
    for node in cluster.nodes:
        server = psutil.Process(node.pid)
        assert server.name() == "nats-server"  # ip netns exec became the server: the group is the server's
        assert os.stat(f"/proc/{node.pid}/ns/net").st_ino != ours
        assert ipaddress.ip_address(node.host) in cluster.network.subnet
    poll_until(lambda: all(_routed_peers(node) == {n.server_name for n in cluster.nodes if n is not node}
                           for node in cluster.nodes), timeout=20, interval=0.2, what="a full mesh of routes")
    poll_until(lambda: _placed(cluster.url, 7), timeout=15, interval=0.5, what="job_7 placed on the three nodes")
    assert _on(cluster.url, lambda queue: queue.publish(7, [(f"t{i}", b"x") for i in range(5)])) == 5
    poll_until(lambda: all(_messages(node, "job_7") == 5 for node in cluster.nodes), timeout=20, interval=0.2,
               what="job_7 on every node")


def test_a_partitioned_node_is_unavailable_the_others_carry_on_and_it_rejoins(cluster):
    cut = cluster.node(cluster.partition("follower", stream="job_7")["node"])
    others = [node for node in cluster.nodes if node is not cut]
    try:
        poll_until(lambda: not _routed_peers(cut) and all(len(_routed_peers(n)) == 1 for n in others), timeout=20,
                   interval=0.2, what="the partitioned node's routes timed out")
        for call in (lambda queue: queue.create(8, None), lambda queue: queue.ensure(7, None)):
            with pytest.raises(QueueUnavailable):  # never QueueMissing: the stream is there, out of reach
                _on(cut.url, call)
        majority = ",".join(node.url for node in others)
        assert _on(majority, lambda queue: queue.publish(7, [(f"u{i}", b"y") for i in range(3)])) == 3
        assert _messages(cut, "job_7") == 5  # nothing reached it
    finally:
        cluster.heal_partition()
    poll_until(lambda: _messages(cut, "job_7") == 8, timeout=30, interval=0.2, what="the healed node caught up")
    _on(cut.url, lambda queue: queue.ensure(7, None))


def test_kill_and_pause_hit_the_real_server(cluster):
    node = cluster.pick("follower")
    node.pause()
    assert psutil.Process(node.pid).status() == psutil.STATUS_STOPPED
    node.resume()
    pid = node.pid
    node.kill()
    assert not psutil.pid_exists(pid)
    assert cluster.start_nodes()["started"] == [node.server_name]


def test_nothing_is_left_after_a_killed_cluster_stops():
    if not AVAILABLE:
        pytest.skip(f"network namespaces: {WHY}")
    from harness.infra.nats_netns import NetnsNatsCluster

    doomed = NetnsNatsCluster().start()
    doomed.kill()
    doomed.stop()
    assert doomed.network.leftovers() == []


def test_the_leftovers_of_a_run_killed_with_sigkill_are_removed():
    if not AVAILABLE:
        pytest.skip(f"network namespaces: {WHY}")
    script = ("import os, signal; from harness.infra.netns import IsolatedNetwork; "
              "net = IsolatedNetwork(['a', 'b']).create(); print(net.tag, flush=True); "
              "os.kill(os.getpid(), signal.SIGKILL)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    tag = done.stdout.strip()
    built = {f"chaos-{tag}-a", f"chaos-{tag}-b", f"cx{tag}b", f"cx{tag}v1", f"cx{tag}v2"}
    present = lambda: built & {*netns.list_namespaces(), *netns.list_links()}  # noqa: E731
    assert present() == built, "the killed run left nothing to clean up: the test would prove nothing"
    netns.remove_leftovers()
    assert present() == set()
