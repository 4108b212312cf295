"""Three nats-server nodes from the same wheel, clustered on loopback, with JetStream on every node.

Each node dials the others through a harness-owned TCP proxy (route_proxy.py), one per ordered pair, so
`partition(node)` cuts that node's routes and `heal()` mends them; clients keep reaching every node. A node
advertises a route address nobody listens on (a port held bound, never listening): a node that learns of
another through gossip cannot open a route around the proxies.

The cluster has NatsServer's lifecycle surface (start / stop / kill / restart(wipe) / pause / resume /
mark_disk / lose_writes act on every node) plus the per-node verbs of the cluster faults.
"""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from harness.infra.base import Service, free_port
from harness.infra.nats import SYNC_INTERVAL, NatsServer
from harness.infra.route_proxy import Proxy, RouteProxies
from harness.waiting import Timeout, poll_until

CLUSTER_NAME = "chaos"
ROLES = ("follower", "stream-leader", "meta-leader")


class NatsNode(NatsServer):
    """One clustered node: server_name, a cluster listener, routes to its peers (their proxies, or their own
    addresses), the address it advertises to them, and any further lines of its `cluster` block."""

    def __init__(self, index: int, *, host: str = "127.0.0.1", **kwargs):
        super().__init__(host=host, **kwargs)
        self.server_name = f"n{index + 1}"
        self.name = f"nats_{self.server_name}"  # no "-": temp dir names are split on it
        self.cluster_port = free_port(host)
        self.routes: list[str] = []  # host:port of each route this node dials
        self.advertise = ""
        self.cluster_extra = ""

    def prepare(self) -> None:
        routes = ", ".join(f"nats-route://{route}" for route in self.routes)
        (self.tmpdir / "nats.conf").write_text(
            f"server_name: {self.server_name}\n"
            f'jetstream {{ sync_interval: "{SYNC_INTERVAL}" }}\n'
            f"cluster {{\n  name: {CLUSTER_NAME}\n  listen: {self.host}:{self.cluster_port}\n"
            f"  advertise: {self.advertise}\n  routes: [{routes}]\n{self.cluster_extra}}}\n")


def _start_or_resume(node: NatsNode) -> None:
    if node.paused:
        node.resume()
    node.start()


class NatsCluster(Service):
    name = "nats"
    size = 3

    def __init__(self, *, host: str = "127.0.0.1", binary: str | None = None, ready_timeout: float = 60.0):
        self.host, self.ready_timeout = host, ready_timeout
        self.startup_seconds: float | None = None
        self.partitioned: set[str] = set()
        self.nodes = [self._node(i, binary) for i in range(self.size)]
        self._wire_routes(host)

    def _node(self, index: int, binary: str | None) -> NatsNode:
        return NatsNode(index, host=self.host, binary=binary)

    def _wire_routes(self, host: str) -> None:
        """Every ordered pair of nodes gets a proxy; a node advertises a dead end (see the module's doc)."""
        self.proxies = RouteProxies()
        self.links: dict[tuple[str, str], Proxy] = {}  # (from, to) -> the proxy node `from` dials `to` through
        self._dead_ends: list[socket.socket] = []
        for node in self.nodes:
            dead_end = socket.socket()
            dead_end.bind((host, 0))  # bound, never listening: a connection to it is refused
            self._dead_ends.append(dead_end)
            node.advertise = f"{host}:{dead_end.getsockname()[1]}"
            for peer in self.nodes:
                if peer is not node:
                    proxy = self.proxies.add(host, peer.cluster_port)
                    self.links[node.server_name, peer.server_name] = proxy
                    node.routes.append(f"{host}:{proxy.listen_port}")

    def _open_routes(self) -> None:
        self.proxies.start()

    def _close_routes(self) -> None:
        self.proxies.stop()
        for dead_end in self._dead_ends:
            dead_end.close()

    def _cut(self, name: str) -> None:
        self.proxies.cut([proxy for pair, proxy in self.links.items() if name in pair])

    def _mend(self) -> None:
        self.proxies.mend(list(self.links.values()))

    # --- what NatsServer offers ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Every node's URL, comma-separated (fixes.jetstream.servers() turns it into nats-py's list)."""
        return ",".join(node.url for node in self.nodes)

    @property
    def monitor_url(self) -> str:
        return self.nodes[0].monitor_url

    @property
    def is_running(self) -> bool:
        return any(node.is_running for node in self.nodes)

    @property
    def paused(self) -> bool:
        return any(node.paused for node in self.nodes)

    @property
    def pid(self) -> int | None:
        return self.nodes[0].pid

    def child_pids(self) -> list[int]:
        """The other nodes and every node's children: with `pid`, every process of the cluster (CPU meters)."""
        rest = [node.pid for node in self.nodes[1:] if node.pid]
        return rest + [child for node in self.nodes for child in node.child_pids()]

    def start(self) -> NatsCluster:
        began = time.perf_counter()
        self._open_routes()
        self._each(_start_or_resume)
        self.wait_for_meta_leader()
        self.startup_seconds = time.perf_counter() - began
        return self

    def stop(self, timeout: float | None = None, keep_data: bool = False) -> None:
        self._each(lambda node: node.stop(timeout=timeout, keep_data=keep_data))
        if not keep_data:
            self._close_routes()

    close = stop

    def kill(self) -> None:
        self._each(NatsNode.kill)

    def restart(self, wipe: bool = False) -> NatsCluster:
        self._each(lambda node: node._halt(node.stop_timeout))
        if wipe:
            self.wipe()
        return self.start()

    def wipe(self) -> None:
        self._each(NatsNode.wipe)

    def pause(self) -> None:
        self._each(NatsNode.pause)

    def resume(self) -> None:
        self._each(NatsNode.resume)

    def mark_disk(self) -> None:
        self._each(NatsNode.mark_disk)

    def lose_writes(self, stream: str | None = None, tail: int = 0) -> dict:
        """Every node crashes at once (a power loss) and comes back with what its disk held: see NatsServer."""
        self.kill()
        cuts = self._each(lambda node: node.lose_writes_offline(stream, tail))
        self.start()
        return {"cut": cuts}

    def logs(self, tail: int = 50) -> str:
        return "\n".join(f"--- {node.server_name}\n{node.logs(tail)}" for node in self.nodes)

    def probe(self):
        return self.nodes[0].probe()

    # --- who leads ------------------------------------------------------------------------------
    def node(self, name: str) -> NatsNode:
        return next(node for node in self.nodes if node.server_name == name)

    def _jsz(self, node: NatsNode, query: str = "") -> dict | None:
        if not node.is_running or node.paused:
            return None
        try:
            return httpx.get(f"{node.monitor_url}/jsz{query}", timeout=2).json()
        except (httpx.HTTPError, ValueError):
            return None

    def _alive(self, name: str | None) -> bool:
        return bool(name) and name not in self.partitioned and self.node(name).is_running

    def meta_leader(self) -> str | None:
        """The meta leader as a node outside a partition sees it, None during an election (or while the nodes
        have not yet noticed that their leader died)."""
        for node in self.nodes:
            if node.server_name in self.partitioned:
                continue
            leader = ((self._jsz(node) or {}).get("meta_cluster") or {}).get("leader")
            if self._alive(leader):
                return leader
        return None

    def stream_leader(self, stream: str) -> str | None:
        for node in self.nodes:
            if node.server_name in self.partitioned:
                continue
            for account in (self._jsz(node, "?accounts=true&streams=true") or {}).get("account_details") or []:
                for detail in account.get("stream_detail") or []:
                    leader = (detail.get("cluster") or {}).get("leader")
                    if detail.get("name") == stream and self._alive(leader):
                        return leader
        return None

    def converged(self) -> bool:
        """Every running node is routed to every other one and names the same live meta leader."""
        running = [node for node in self.nodes if node.is_running and not node.paused]
        leaders = set()
        for node in running:
            try:
                routes = httpx.get(f"{node.monitor_url}/routez", timeout=2).json().get("routes") or []
            except (httpx.HTTPError, ValueError):
                return False
            if {route.get("remote_name") for route in routes} != {n.server_name for n in running if n is not node}:
                return False
            leaders.add(((self._jsz(node) or {}).get("meta_cluster") or {}).get("leader"))
        return len(leaders) == 1 and self._alive(leaders.pop())

    def wait_converged(self, timeout: float = 30.0) -> None:
        """After a heal: until the cluster is whole again, so that what a client reads next is not a lagging
        node's view."""
        poll_until(self.converged, timeout=timeout, interval=0.2, what="the NATS cluster whole again")

    def wait_for_meta_leader(self, timeout: float | None = None) -> str:
        return poll_until(self.meta_leader, timeout=timeout or self.ready_timeout, interval=0.2,
                          what="a JetStream meta leader in the NATS cluster")

    def pick(self, role: str, stream: str | None = None) -> NatsNode:
        """The node playing `role`: the meta leader, the stream's leader, or a follower of both."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        meta = self.wait_for_meta_leader(timeout=15)
        if role == "meta-leader":
            return self.node(meta)
        leader = self.stream_leader(stream) if stream else None
        if role == "stream-leader":
            if leader is None and stream:  # just created, or in an election: give it a moment
                try:
                    leader = poll_until(lambda: self.stream_leader(stream), timeout=5, interval=0.2, what="")
                except Timeout:
                    pass
            return self.node(leader or meta)  # no such stream (the job ended, its store wiped): the meta leader
        return next(node for node in self.nodes if node.server_name not in (meta, leader) and node.is_running)

    # --- node faults ----------------------------------------------------------------------------
    def kill_node(self, role: str, stream: str | None = None) -> dict:
        node = self.pick(role, stream)
        node.kill()
        return {"node": node.server_name}

    def lose_quorum(self, stream: str | None = None) -> dict:
        """kill -9 two of the three nodes (the stream's leader among them): neither the meta group nor any
        replicated stream has a quorum; the follower left answers its clients, JetStream no longer does."""
        survivor = self.pick("follower", stream)
        killed = [node for node in self.nodes if node is not survivor and node.is_running]
        self._each(lambda node: node.kill() if node in killed else None)
        return {"nodes": [node.server_name for node in killed], "survivor": survivor.server_name}

    def start_nodes(self) -> dict:
        """Start every node that is down (a no-op on running ones) and wait until the cluster is whole again."""
        started = [node.server_name for node in self.nodes if not node.is_running and node.start()]
        if not self.partitioned:
            self.wait_converged()
        return {"started": started}

    def wipe_node(self, role: str = "follower", stream: str | None = None) -> dict:
        """Restart one node with its JetStream store deleted: it rejoins empty and catches up from its peers."""
        node = self.pick(role, stream)
        node.restart(wipe=True)
        return {"node": node.server_name}

    def partition(self, role: str = "follower", stream: str | None = None) -> dict:
        node = self.pick(role, stream)
        name = node.server_name
        self._cut(name)
        self.partitioned.add(name)
        return {"node": name}

    def heal_partition(self) -> dict:
        healed = sorted(self.partitioned)
        self._mend()
        self.partitioned.clear()
        self.wait_converged()
        return {"healed": healed}

    def _each(self, action) -> list:
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            return list(pool.map(action, self.nodes))
