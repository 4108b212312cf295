"""A simulated worker in its own process group (`python -m harness.workers`): the harness can SIGKILL it
mid-batch. Like every ManagedProcess it is stopped at interpreter exit if still running, and tagged with the
run id so `reap_orphans()` finds it after a crashed run."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path

from harness.history import History
from harness.infra.base import ManagedProcess
from harness.infra.ready import CallableProbe, Probe
from harness.waiting import poll_until


class WorkerProcess(ManagedProcess):
    name = "worker"

    def __init__(self, api_url: str, token: str, *, kind: str = "healthy", count: int = 1,
                 pipelines: Iterable[str] = (), job_ids: Iterable[int] = (), batch_size: int | None = None,
                 ack_wait: float | None = None, hold: float | None = None, heartbeat: bool = False,
                 until_idle: bool = False, duration: float | None = None, record_history: bool = True,
                 args: Iterable[str] = (), **kwargs):
        super().__init__(**kwargs)
        self.api_url, self.token, self.kind, self.record_history = api_url, token, kind, record_history
        options = [("--count", count), ("--batch-size", batch_size), ("--ack-wait", ack_wait),
                   ("--hold", hold), ("--duration", duration)]
        self.args = [str(part) for flag, value in options if value is not None for part in (flag, value)]
        self.args += [part for slug in pipelines for part in ("--pipeline", slug)]
        self.args += [str(part) for job in job_ids for part in ("--job", job)]
        self.args += ["--heartbeat"] * heartbeat + ["--until-idle"] * until_idle + list(args)

    @property
    def url(self) -> str:
        return self.api_url

    @property
    def history_path(self) -> Path | None:
        return self.tmpdir / "history.jsonl" if self.tmpdir is not None and self.record_history else None

    def command(self) -> list[str]:
        history = ["--history", str(self.history_path)] if self.history_path is not None else []
        return [sys.executable, "-m", "harness.workers", "--api-url", self.api_url, "--token", self.token,
                "--kind", self.kind, *history, *self.args]

    def probe(self) -> Probe:
        return CallableProbe(lambda: True, "process started")

    def events(self) -> list[dict]:
        """The JSON event lines printed so far (reserved batches, then the final summary)."""
        found = []
        for line in self.logs(tail=100_000).splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return found

    def reservations(self) -> list[dict]:
        return [event for event in self.events() if event.get("event") == "reserved"]

    def wait_for_reservation(self, timeout: float = 30.0, count: int = 1) -> dict:
        """Block until the worker has reserved `count` batches; returns the event of the count-th."""
        return poll_until(lambda: (self.reservations()[count - 1:] or [None])[0], timeout=timeout,
                          what=f"{self.kind} worker reserving {count} batch(es)")

    def wait(self, timeout: float = 60.0) -> dict:
        """Block until the worker exits by itself; returns its summary event ({} if it died without one)."""
        poll_until(lambda: not self.is_running, timeout=timeout, what=f"{self.kind} worker finishing")
        return next((e for e in reversed(self.events()) if e.get("event") == "done"), {})

    def history(self) -> History:
        """The operations the subprocess recorded (up to its last one, even after a SIGKILL). Read it before
        stop(), which deletes the temp dir; merge it with History.extend()."""
        path = self.history_path
        return History.from_jsonl(path) if path is not None and path.exists() else History()
