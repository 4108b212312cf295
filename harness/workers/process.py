"""A simulated worker in its own process group: the harness can SIGKILL it mid-batch."""

from __future__ import annotations

import json
import sys

from harness.infra.base import ManagedProcess
from harness.infra.ready import CallableProbe, Probe
from harness.waiting import poll_until


class WorkerProcess(ManagedProcess):
    name = "worker"

    def __init__(self, api_url: str, token: str, *, kind: str = "healthy", args: list[str] = (), **kwargs):
        super().__init__(**kwargs)
        self.api_url, self.token, self.kind, self.args = api_url, token, kind, list(args)

    @property
    def url(self) -> str:
        return self.api_url

    def command(self) -> list[str]:
        return [sys.executable, "-m", "harness.workers", "--api-url", self.api_url, "--token", self.token,
                "--kind", self.kind, *self.args]

    def probe(self) -> Probe:
        return CallableProbe(lambda: True, "process started")

    def events(self) -> list[dict]:
        lines = self.logs(tail=10_000).splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def wait_for_reservation(self, timeout: float = 30.0) -> dict:
        """Block until the worker reserved a batch; returns that event."""
        return poll_until(lambda: next((e for e in self.events() if e["event"] == "reserved"), None),
                          timeout=timeout, what=f"{self.kind} worker reserving a batch")

    def wait(self, timeout: float = 60.0) -> dict:
        """Block until the worker exits by itself; returns its summary event."""
        poll_until(lambda: not self.is_running, timeout=timeout, what=f"{self.kind} worker finishing")
        return next((e for e in reversed(self.events()) if e["event"] == "done"), {})
