"""What the fixes cost in end-to-end throughput: the same drain on two identical sandbox stacks, fixes on and off.

Both stacks have the same shape (gunicorn 3 × 4 threads, Celery prefork 2, beat) and the same timings (Antenna's
max_ack_pending 1000, sweep every `sweep_interval` s); only CHAOS_FIXES differs. In each of `pairs` rounds one
job of `images` images is drained on each (throughput.drain_job: `concurrency` asyncio workers looping
/tasks/ → /result/), the two alternating which goes first, so both see the same machine load. The ratio
fixes on / fixes off of each round, and their median, is the cost.
"""

from __future__ import annotations

import contextlib
import statistics
import sys

from harness.bench.common import Measurement, running_stack
from harness.bench.throughput import drain_job

MODES = ("off", "on")


def run(images: int = 5000, concurrency: int = 8, pairs: int = 3, sweep_interval: float = 60.0) -> list[Measurement]:
    settings = {"ack_wait": 60, "max_deliver": 3, "fetch_timeout": 0.25, "max_ack_pending": 1000,
                "sweep_interval": sweep_interval}
    drains: dict[str, list[dict]] = {mode: [] for mode in MODES}
    with contextlib.ExitStack() as stacks:
        started = {mode: stacks.enter_context(running_stack({**settings, "fixes": mode}, web_workers=3))
                   for mode in MODES}
        for mode in MODES:  # warm-up: connections, the bridge, the first Celery task of each worker process
            drain_job(started[mode], 32, concurrency)
        for i in range(pairs):
            for mode in MODES if i % 2 == 0 else MODES[::-1]:
                result = drain_job(started[mode], images, concurrency)
                drains[mode].append(result)
                print(f"fixes_cost pair {i + 1}, fixes {mode}: {result['e2e_rate']:.0f} tasks/s end to end",
                      file=sys.stderr)
    name = "fixes_cost"
    note = f"{images} images, {concurrency} workers, batch 16, max_ack_pending 1000, {pairs} pairs alternating"
    rows = []
    for mode in MODES:
        rows += [Measurement(name, f"fixes {mode}: end to end, median",
                             statistics.median(d["e2e_rate"] for d in drains[mode]), "tasks/s", note),
                 Measurement(name, f"fixes {mode}: HTTP reserve+result, median",
                             statistics.median(d["http_rate"] for d in drains[mode]), "tasks/s", "")]
    for kind in ("e2e_rate", "http_rate"):
        ratios = [on[kind] / off[kind] for off, on in zip(drains["off"], drains["on"], strict=True)]
        label = "end to end" if kind == "e2e_rate" else "HTTP"
        rows += [Measurement(name, f"fixes on / off, {label}, median", statistics.median(ratios), "ratio",
                             "goal ≥ 0.97"),
                 Measurement(name, f"fixes on / off, {label}, per pair", min(ratios), "ratio",
                             "min; all: " + ", ".join(f"{r:.3f}" for r in ratios))]
    for mode in MODES:
        for service in ("web", "celery_worker"):
            per_task = statistics.median(d["cpu"].get(service, 0.0) / images for d in drains[mode])
            rows.append(Measurement(name, f"fixes {mode}: CPU per task, {service}", per_task * 1000, "ms", "median"))
    return rows
