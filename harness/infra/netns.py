"""An isolated network the run owns (as root): one bridge in the root namespace, one network namespace per member.

Each member gets a namespace with `lo` up and one end of a veth pair (its other end on the bridge), with an
address from a private /24 that overlaps no route or address of the machine. The bridge holds the subnet's .1,
so processes of the root namespace (the harness, the sandbox, Celery) reach every member directly; members
reach each other over the bridge.

Names carry the owner's pid and a per-process counter (`cx<pid>-<k>b`, `cx<pid>-<k>v<i>`, namespaces
`chaos-<pid>-<k>-<member>`), so parallel runs (xdist workers, two soak lanes) never collide and
`remove_leftovers()` can delete what a run killed with -9 left behind. Teardown is idempotent and registered
with atexit.
"""

from __future__ import annotations

import atexit
import fcntl
import ipaddress
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import psutil

POOL = ipaddress.ip_network("10.200.0.0/13")  # 2048 candidate /24s, all private
FIRST_HOST = 11  # members are .11, .12, …; the bridge (the root namespace's address) is .1
LINK_NAME = re.compile(r"^cx(\d+)-(\d+)[bv]\d*$")
NAMESPACE_NAME = re.compile(r"^chaos-(\d+)-(\d+)-[\w.]+$")
LOCK_FILE = Path(tempfile.gettempdir()) / "chaos-netns.lock"

_counter = itertools.count(1)
_available: tuple[bool, str] | None = None


def ip_binary() -> str | None:
    return shutil.which("ip") or next((p for p in ("/usr/sbin/ip", "/sbin/ip") if os.access(p, os.X_OK)), None)


def ip(*args: str, namespace: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    prefix = [ip_binary() or "ip"] + (["-n", namespace] if namespace else [])
    return subprocess.run([*prefix, *args], check=check, capture_output=True, text=True, timeout=20)


def available() -> tuple[bool, str]:
    """(True, "") when this process can build namespaces, else (False, why): callers skip with the reason."""
    global _available
    if _available is None:
        _available = _probe()
    return _available


def _probe() -> tuple[bool, str]:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False, "network namespaces need root (run as root, or use --nats cluster3: proxies on loopback)"
    if ip_binary() is None:
        return False, "network namespaces need the `ip` command (iproute2)"
    probe = f"chaos-{os.getpid()}-0-probe"
    try:
        ip("netns", "add", probe)
    except subprocess.CalledProcessError as exc:
        return False, f"creating a network namespace was refused: {exc.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return True, ""


def owner_pid(name: str) -> int | None:
    """The pid of the run that named this link or namespace, None for names that are not ours."""
    found = LINK_NAME.match(name) or NAMESPACE_NAME.match(name)
    return int(found.group(1)) if found else None


def pick_subnet(taken: list[ipaddress.IPv4Network], start: int = 0) -> ipaddress.IPv4Network:
    """The first /24 of POOL (from `start`, wrapping around) that overlaps none of `taken`."""
    subnets = list(POOL.subnets(new_prefix=24))
    for offset in range(len(subnets)):
        subnet = subnets[(start + offset) % len(subnets)]
        if not any(subnet.overlaps(net) for net in taken):
            return subnet
    raise RuntimeError(f"no free /24 left in {POOL} for a run's network")


def taken_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 route (all tables, but not the default route) and every address's network on the machine."""
    taken = []
    for route in json.loads(ip("-j", "-4", "route", "show", "table", "all").stdout or "[]"):
        if route.get("dst", "default") != "default":
            taken.append(ipaddress.ip_network(route["dst"], strict=False))
    for link in json.loads(ip("-j", "-4", "addr").stdout or "[]"):
        for addr in link.get("addr_info") or []:
            taken.append(ipaddress.ip_network(f"{addr['local']}/{addr['prefixlen']}", strict=False))
    return taken


@contextmanager
def _machine_lock():
    """Picking a subnet and putting it on a bridge is one step for every run on the machine."""
    with open(LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class IsolatedNetwork:
    """`with IsolatedNetwork(["n1", "n2", "n3"]) as net:` net.address("n1"), net.namespace("n1"), net.gateway."""

    def __init__(self, members: list[str]):
        self.members = list(members)
        self.tag = f"{os.getpid()}-{next(_counter)}"
        self.bridge = f"cx{self.tag}b"
        self.subnet: ipaddress.IPv4Network | None = None
        self._up = False
        self._lock = threading.Lock()

    def namespace(self, member: str) -> str:
        return f"chaos-{self.tag}-{member}"

    def veth(self, member: str) -> str:
        return f"cx{self.tag}v{self.members.index(member) + 1}"

    def address(self, member: str) -> str:
        assert self.subnet is not None, "the network has no subnet before create()"
        return str(self.subnet.network_address + FIRST_HOST + self.members.index(member))

    @property
    def gateway(self) -> str:
        """The bridge's address: where the root namespace's connections to the members come from."""
        return str(self.subnet.network_address + 1)

    def create(self) -> IsolatedNetwork:
        ok, reason = available()
        if not ok:
            raise RuntimeError(reason)
        with self._lock:
            if self._up:
                return self
            atexit.register(self.destroy)
            self._up = True  # from here on destroy() has something to do, even if a step below fails
            try:
                self._build()
            except BaseException:
                self.destroy()
                raise
        return self

    def _build(self) -> None:
        remove_leftovers()
        with _machine_lock():
            self.subnet = self.subnet or pick_subnet(taken_networks(), start=os.getpid() % 2048)
            ip("link", "add", self.bridge, "type", "bridge")
            ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for member in self.members:
            namespace, veth, inside = self.namespace(member), self.veth(member), f"{self.veth(member)}p"
            ip("netns", "add", namespace)
            ip("link", "set", "lo", "up", namespace=namespace)
            ip("link", "add", veth, "type", "veth", "peer", "name", inside)
            ip("link", "set", inside, "netns", namespace)
            ip("link", "set", inside, "name", "eth0", namespace=namespace)
            ip("addr", "add", f"{self.address(member)}/24", "dev", "eth0", namespace=namespace)
            ip("link", "set", "eth0", "up", namespace=namespace)
            ip("link", "set", veth, "master", self.bridge)
            ip("link", "set", veth, "up")

    def destroy(self) -> None:
        """Delete every namespace, veth and the bridge (idempotent; missing objects are fine)."""
        with self._lock:
            if not self._up:
                return
            for member in self.members:
                ip("netns", "del", self.namespace(member), check=False)
                ip("link", "del", self.veth(member), check=False)  # gone with its peer's namespace, unless busy
            ip("link", "del", self.bridge, check=False)
            self._up = False
            atexit.unregister(self.destroy)

    def leftovers(self) -> list[str]:
        """This network's objects still present (after destroy(): none)."""
        return [name for name in (*list_namespaces(), *list_links()) if name.startswith((f"cx{self.tag}", f"chaos-{self.tag}-"))]

    # --- a black hole between members -----------------------------------------------------------------
    def blackhole(self, member: str, peer: str) -> None:
        """Packets from `member` to `peer` vanish (no reset, no ICMP error to the peer)."""
        ip("route", "replace", "blackhole", f"{self.address(peer)}/32", namespace=self.namespace(member))

    def unblackhole(self, member: str, peer: str) -> None:
        ip("route", "del", "blackhole", f"{self.address(peer)}/32", namespace=self.namespace(member), check=False)

    def __enter__(self) -> IsolatedNetwork:
        return self.create()

    def __exit__(self, *exc_info) -> None:
        self.destroy()


def list_namespaces() -> list[str]:
    return [entry.split()[0] for entry in ip("netns", "list", check=False).stdout.splitlines() if entry.strip()]


def list_links() -> list[str]:
    return [link["ifname"] for link in json.loads(ip("-j", "link", check=False).stdout or "[]")]


def remove_leftovers() -> list[str]:
    """Delete the namespaces, veths and bridges of runs whose owner process is gone. Returns their names."""
    if ip_binary() is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return []
    removed = []
    for name in list_namespaces():
        pid = owner_pid(name)
        if pid is not None and not psutil.pid_exists(pid):
            ip("netns", "del", name, check=False)
            removed.append(name)
    for name in list_links():
        pid = owner_pid(name)
        if pid is not None and not psutil.pid_exists(pid):
            ip("link", "del", name, check=False)
            removed.append(name)
    return removed
