"""What the fixes cost in end-to-end throughput: the same drain on identical sandbox stacks, fixes on and off.

Both stacks have the same shape (gunicorn 3 × 4 threads, Celery prefork 2, beat) and the same timings (Antenna's
max_ack_pending 1000, sweep every `sweep_interval` s); only CHAOS_FIXES differs. In each of `pairs` rounds one
job of `images` images is drained on each (throughput.drain_job: `concurrency` asyncio workers looping
/tasks/ → /result/), the order rotating from round to round, so all see the same machine load. The ratio
fixes on / fixes off of each round, and their median, is the cost.

`without` (comma-separated fix switches, e.g. `--set without=extend_on_result,fencing`) adds one stack per
switch: the fixes on with that one switch off. Its ratio to fixes off, next to the full one, is what that fix
costs.
"""

from __future__ import annotations

import contextlib
import statistics
import sys

from harness.bench.common import Measurement, running_stack
from harness.bench.throughput import drain_job


def modes(without: str = "") -> dict[str, dict]:
    """Stack name -> its fixes settings: off, on, and on less each switch named in `without`."""
    from fixes.config import FixesConfig

    out = {"off": {"fixes": "off"}, "on": {"fixes": "on"}}
    for switch in filter(None, (s.strip() for s in without.split(","))):
        if switch not in FixesConfig.switches():
            raise ValueError(f"without: {switch!r} is no fix switch (one of {', '.join(FixesConfig.switches())})")
        out[f"on, no {switch}"] = {"fixes": "on", f"fix_{switch}": False}
    return out


def run(images: int = 5000, concurrency: int = 8, pairs: int = 3, sweep_interval: float = 60.0,
        without: str = "") -> list[Measurement]:
    settings = {"ack_wait": 60, "max_deliver": 3, "fetch_timeout": 0.25, "max_ack_pending": 1000,
                "sweep_interval": sweep_interval}
    stacks_of = modes(without)
    names = list(stacks_of)
    drains: dict[str, list[dict]] = {mode: [] for mode in names}
    with contextlib.ExitStack() as stacks:
        started = {mode: stacks.enter_context(running_stack({**settings, **fixes}, web_workers=3))
                   for mode, fixes in stacks_of.items()}
        for mode in names:  # warm-up: connections, the bridge, the first Celery task of each worker process
            drain_job(started[mode], 32, concurrency)
        for i in range(pairs):
            for mode in names[i % len(names):] + names[:i % len(names)]:
                result = drain_job(started[mode], images, concurrency)
                drains[mode].append(result)
                print(f"fixes_cost round {i + 1}, fixes {mode}: {result['e2e_rate']:.0f} tasks/s end to end",
                      file=sys.stderr)
    name = "fixes_cost"
    note = f"{images} images, {concurrency} workers, batch 16, max_ack_pending 1000, {pairs} rounds rotating"
    rows = []
    for mode in names:
        rows += [Measurement(name, f"fixes {mode}: end to end, median",
                             statistics.median(d["e2e_rate"] for d in drains[mode]), "tasks/s", note),
                 Measurement(name, f"fixes {mode}: HTTP reserve+result, median",
                             statistics.median(d["http_rate"] for d in drains[mode]), "tasks/s", "")]
        note = ""
    for mode in names[1:]:
        for kind in ("e2e_rate", "http_rate"):
            ratios = [on[kind] / off[kind] for off, on in zip(drains["off"], drains[mode], strict=True)]
            label = "end to end" if kind == "e2e_rate" else "HTTP"
            rows += [Measurement(name, f"fixes {mode} / off, {label}, median", statistics.median(ratios), "ratio",
                                 "goal ≥ 0.97" if mode == "on" else ""),
                     Measurement(name, f"fixes {mode} / off, {label}, per round", min(ratios), "ratio",
                                 "min; all: " + ", ".join(f"{r:.3f}" for r in ratios))]
    for mode in names:
        for service in ("web", "celery_worker"):
            per_task = statistics.median(d["cpu"].get(service, 0.0) / images for d in drains[mode])
            rows.append(Measurement(name, f"fixes {mode}: CPU per task, {service}", per_task * 1000, "ms", "median"))
    return rows
