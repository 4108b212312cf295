"""Simulated workers speaking the Antenna worker protocol, in-process or as a kill-able subprocess."""

from harness.workers.sim import KINDS, SimWorker, Summary, WorkerKind, run_workers

__all__ = ["KINDS", "SimWorker", "Summary", "WorkerKind", "run_workers"]
