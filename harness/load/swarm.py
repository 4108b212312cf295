"""Run the Locust swarm of harness/load/locustfile.py: in one process, or as a master and N workers on loopback.

Distributed, every Locust process is a ManagedProcess of its own (process group, stopped at exit, also on a
failure or Ctrl-C); the master binds 127.0.0.1 only and waits for its N workers before it starts the users.
"""

from __future__ import annotations

import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

from harness.infra.base import ManagedProcess, free_port
from harness.infra.ready import CallableProbe, PortProbe, Probe
from harness.waiting import Timeout, poll_until, slowdown

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
COLLECT_MARGIN = 90.0  # seconds beyond --duration for stopping the workers and collecting their counts


def swarm_options(args: Namespace, out: Path) -> list[str]:
    """The locustfile's own options (a master hands them to its workers)."""
    return ["--crash-share", str(args.crash_share), "--error-share", str(args.error_share),
            "--poll-interval", "0.2", "--idle-stop", str(max(3.0, 2 * args.sweep_interval)),
            "--counts-file", str(out / "batches.json")]


def run_swarm(api_url: str, token: str, args: Namespace, out: Path) -> int:
    """Locust's exit code (1 when a request failed: a 503 during the run is allowed, the invariants decide)."""
    if args.workers > 0:
        return run_distributed(api_url, token, args, out)
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", api_url,
               "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{args.duration}s",
               "--csv", str(out / "locust"), "--only-summary", "--stop-timeout", "5", *swarm_options(args, out)]
    env = {**os.environ, "CHAOS_TOKEN": token}
    with open(out / "locust.log", "wb") as log:
        return subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                              timeout=args.duration + 60).returncode


class LocustProcess(ManagedProcess):
    """One Locust process (a master or a worker) whose log goes to the report directory."""

    def __init__(self, name: str, arguments: list[str], log_dir: Path, probe: Probe, token: str):
        super().__init__(env={"CHAOS_TOKEN": token}, ready_timeout=60.0 * slowdown(), stop_timeout=10.0)
        self.name, self.arguments, self.log_dir, self._probe = name, arguments, log_dir, probe

    def command(self) -> list[str]:
        return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *self.arguments]

    def probe(self) -> Probe:
        return self._probe

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def wait(self, timeout: float) -> int | None:
        """Wait for the process to exit by itself; its exit code, None when it still runs at the timeout."""
        try:
            poll_until(lambda: not self.is_running, timeout, interval=0.2, what=f"{self.name} to end")
        except Timeout:
            return None
        self.stop()
        return self.returncode


def distributed_processes(api_url: str, token: str, args: Namespace, out: Path) -> list[LocustProcess]:
    """The master (first) and its workers, all on loopback."""
    port = free_port()
    master = ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
              "--expect-workers", str(args.workers), "--expect-workers-max-wait", str(round(60 * slowdown())),
              "--headless", "--host", api_url, "-u", str(args.users), "-r", str(args.spawn_rate),
              "--csv", str(out / "locust"), "--only-summary", "--stop-timeout", "5",
              "--stop-after", str(args.duration), *swarm_options(args, out)]
    worker = ["--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
    started = CallableProbe(lambda: True, "started")  # the master's --expect-workers waits for the connection
    return [LocustProcess("locust-master", master, out, PortProbe(port), token),
            *(LocustProcess(f"locust-worker-{i}", worker, out, started, token) for i in range(args.workers))]


def run_distributed(api_url: str, token: str, args: Namespace, out: Path) -> int:
    """Start the master and its workers, wait for the master to end the swarm, stop the workers."""
    processes = distributed_processes(api_url, token, args, out)
    master = processes[0]
    try:
        for process in (*processes[1:], master):  # workers first: they retry until the master answers
            process.start()
        code = master.wait(args.duration + COLLECT_MARGIN * slowdown())
        if code is None:
            master.stop()  # SIGTERM: the master still writes the counts it has
            raise TimeoutError(f"the Locust master did not end within {args.duration} s + the collect margin")
        return code
    finally:
        for process in reversed(processes):
            process.stop()
