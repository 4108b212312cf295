"""Peak memory of every stack process: the kernel's RSS high-water mark (VmHWM), sampled while a run goes on.

VmHWM is kept by the kernel for a process's whole life, so sampling only has to catch the short-lived processes
(PostgreSQL backends, gunicorn or Celery children that are replaced) before they end.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import psutil


def high_water_kib(pid: int) -> int | None:
    """The process's VmHWM in KiB (None once it has ended or where /proc has no such line)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


@dataclass
class Peak:
    service: str
    pid: int
    name: str  # the process's command name
    kib: int
    main: bool  # the service's own process, not a child

    @property
    def mib(self) -> float:
        return self.kib / 1024


class PeakMemory(threading.Thread):
    """Samples every `interval` s (listing a service's children walks /proc: not too often) the VmHWM of each service's process and its children (and of this process,
    "driver"), keeping each process's largest value. Use as a context manager around the run."""

    def __init__(self, stack, interval: float = 2.0):
        super().__init__(name="peak-memory", daemon=True)
        self.stack, self.interval, self.halt = stack, interval, threading.Event()
        self.peaks: dict[int, Peak] = {}

    def __enter__(self) -> PeakMemory:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.halt.set()
        self.join(5)
        self.sample()

    def run(self) -> None:
        while not self.halt.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        pids = [("driver", psutil.Process().pid, True)]
        for service, process in self.stack.services().items():
            if process.pid:
                pids += [(service, process.pid, True), *((service, child, False) for child in process.child_pids())]
        for service, pid, main in pids:
            kib = high_water_kib(pid)
            if kib is None:
                continue
            known = self.peaks.get(pid)
            if known is None:
                known = self.peaks[pid] = Peak(service, pid, _name(pid), kib, main)
            known.kib = max(known.kib, kib)

    def by_service(self) -> dict[str, dict]:
        """Per service: its own process's peak, its children's count, largest and summed peaks (MiB)."""
        out: dict[str, dict] = {}
        for peak in self.peaks.values():
            row = out.setdefault(peak.service, {"main_mib": 0.0, "main_name": "", "children": 0,
                                                "largest_child_mib": 0.0, "children_sum_mib": 0.0})
            if peak.main:
                row["main_mib"], row["main_name"] = max(row["main_mib"], peak.mib), peak.name
            else:
                row["children"] += 1
                row["largest_child_mib"] = max(row["largest_child_mib"], peak.mib)
                row["children_sum_mib"] += peak.mib
        return out


def _name(pid: int) -> str:
    try:
        return psutil.Process(pid).name()
    except psutil.Error:
        return "?"
