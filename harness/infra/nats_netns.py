"""The 3-node cluster with each node in a network namespace of the run's own (`--nats cluster3-netns`, root only).

Every node runs as `ip netns exec <its namespace> nats-server …` (ip execs the server in place: the pid, the
process group, kill -9 and SIGSTOP are the server's own), listening on its namespace's address on the standard
ports (4222 clients, 8222 monitoring, 6222 routes: each namespace has its own port space). Routes go straight to
the peers' addresses over the run's bridge, no proxy in between; clients in the root namespace reach every node
through the bridge.

A partition is a black hole: a `blackhole` route to each peer inside the cut node's namespace, and one to the
cut node inside each peer's namespace. Nothing is reset and no error reaches the other side, so the nodes
notice only when their route pings go unanswered: the cluster's `ping_interval` / `ping_max` are compressed
(ROUTE_PING_INTERVAL × ROUTE_PING_MAX, about 4 s by default, instead of nats-server's minutes).

Why blackhole routes rather than `tc netem loss 100%`: a route is one `ip` command per direction and matches one
peer address exactly, while netem drops everything leaving the interface unless paired with a tc filter per
peer (and needs the sch_netem module); a blackhole route drops only what is routed to that peer, so the
clients' traffic (from the bridge's address) still flows.
"""

from __future__ import annotations

import os
from itertools import permutations

from harness.infra import netns
from harness.infra.nats_cluster import NatsCluster, NatsNode

CLIENT_PORT, MONITOR_PORT, ROUTE_PORT = 4222, 8222, 6222
ROUTE_PING_INTERVAL = float(os.environ.get("CHAOS_NATS_ROUTE_PING_INTERVAL", "1"))  # seconds
ROUTE_PING_MAX = int(os.environ.get("CHAOS_NATS_ROUTE_PING_MAX", "3"))  # unanswered pings before a route is dropped


class NetnsUnavailable(RuntimeError):
    """This process cannot build network namespaces (not root, no iproute2, refused): the reason says which."""


class NetnsNode(NatsNode):
    """A node inside its namespace, at the namespace's address."""

    def __init__(self, index: int, network: netns.IsolatedNetwork, **kwargs):
        super().__init__(index, **kwargs)  # its loopback ports go unused: the namespace has its own
        self.namespace = network.namespace(self.server_name)
        self.host = network.address(self.server_name)
        self.port, self.monitor_port, self.cluster_port = CLIENT_PORT, MONITOR_PORT, ROUTE_PORT

    def command(self) -> list[str]:
        return [netns.ip_binary() or "ip", "netns", "exec", self.namespace, *super().command()]


class NetnsNatsCluster(NatsCluster):
    def __init__(self, *, binary: str | None = None, ready_timeout: float = 60.0,
                 ping_interval: float = ROUTE_PING_INTERVAL, ping_max: int = ROUTE_PING_MAX):
        ok, reason = netns.available()
        if not ok:
            raise NetnsUnavailable(f"--nats cluster3-netns: {reason}")
        self.ping_interval, self.ping_max = ping_interval, ping_max
        self.network = netns.IsolatedNetwork([f"n{i + 1}" for i in range(self.size)]).create()
        try:
            super().__init__(host=self.network.gateway, binary=binary, ready_timeout=ready_timeout)
        except BaseException:
            self.network.destroy()
            raise

    def _node(self, index: int, binary: str | None) -> NatsNode:
        return NetnsNode(index, self.network, binary=binary)

    def _wire_routes(self, host: str) -> None:
        for node in self.nodes:
            node.advertise = f"{node.host}:{ROUTE_PORT}"
            node.routes = [f"{peer.host}:{ROUTE_PORT}" for peer in self.nodes if peer is not node]
            node.cluster_extra = f'  ping_interval: "{self.ping_interval}s"\n  ping_max: {self.ping_max}\n'

    def _open_routes(self) -> None:
        self.network.create()  # again after a stop(): same names, same subnet

    def _close_routes(self) -> None:
        self.network.destroy()

    def _cut(self, name: str) -> None:
        for peer in (node.server_name for node in self.nodes if node.server_name != name):
            self.network.blackhole(name, peer)
            self.network.blackhole(peer, name)

    def _mend(self) -> None:
        for member, peer in permutations(self.network.members, 2):
            self.network.unblackhole(member, peer)
