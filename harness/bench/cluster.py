"""(f) The 3-node cluster next to the single node, in the same run: detection latency and throughput.

For each topology (single, then cluster3 with every stream at replicas 3) one stack runs, in turn:
- the inline detection measurement of (a): a crash-looping worker exhausts every task, t_dead → FAILURE;
- a drain of one job by HTTP workers (as (d), one max_ack_pending) and raw NATS fetch(16)+ack on the same
  server(s), so each throughput also has its own raw baseline.
The rows give each topology's numbers and the cluster / single ratios.
"""

from __future__ import annotations

import asyncio
import statistics

from harness.bench.common import Measurement, running_stack
from harness.bench.detection import inline_once
from harness.bench.throughput import drain_job, raw_nats

TOPOLOGIES = ("single", "cluster3")


def measure(topology: str, repeats: int, images: int, concurrency: int, messages: int, ack_wait: float,
            max_deliver: int) -> dict:
    detect = {"fixes": "on", "FIX_SWEEP": "0", "ack_wait": ack_wait, "max_deliver": max_deliver,
              "fetch_timeout": 0.25, "nats": topology}
    with running_stack(detect, web_workers=2, beat=False) as stack:
        latencies = [inline_once(stack, 4, ack_wait, max_deliver, 0.25)["latency"] for _ in range(repeats)]
    drain = {"fixes": "on", "ack_wait": 60, "max_deliver": 3, "fetch_timeout": 0.25, "nats": topology}
    with running_stack(drain, web_workers=3) as stack:
        replicas = int(stack.settings.get("CHAOS_STREAM_REPLICAS", "1"))
        raw = asyncio.run(raw_nats(stack.nats.url, messages, 16, replicas=replicas))
        drained = drain_job(stack, images, concurrency)
    return {"detection": statistics.median(latencies), "detection_max": max(latencies), "raw": raw,
            "http": drained["http_rate"], "e2e": drained["e2e_rate"]}


def run(repeats: int = 3, images: int = 2000, concurrency: int = 8, messages: int = 10000, ack_wait: float = 1.0,
        max_deliver: int = 3) -> list[Measurement]:
    name = "cluster"
    got = {topology: measure(topology, repeats, images, concurrency, messages, ack_wait, max_deliver)
           for topology in TOPOLOGIES}
    rows = []
    for topology, r in got.items():
        rows += [Measurement(name, f"[{topology}] inline detection t_dead → FAILURE, median", r["detection"], "s",
                             f"ack_wait {ack_wait:g} s, max_deliver {max_deliver}, {repeats} jobs; max "
                             f"{r['detection_max']:.2f} s"),
                 Measurement(name, f"[{topology}] raw NATS fetch(16)+ack", r["raw"], "msg/s", f"{messages} messages"),
                 Measurement(name, f"[{topology}] HTTP reserve+result", r["http"], "tasks/s",
                             f"{images} images, {concurrency} workers, batch 16"),
                 Measurement(name, f"[{topology}] end to end", r["e2e"], "tasks/s", "until the job's finished_at")]
    single, cluster = got["single"], got["cluster3"]
    rows += [Measurement(name, "cluster / single: detection latency", cluster["detection"] / single["detection"],
                         "ratio", "medians"),
             Measurement(name, "cluster / single: raw NATS fetch(16)+ack", cluster["raw"] / single["raw"], "ratio", ""),
             Measurement(name, "cluster / single: HTTP reserve+result", cluster["http"] / single["http"], "ratio", ""),
             Measurement(name, "cluster / single: end to end", cluster["e2e"] / single["e2e"], "ratio", "")]
    return rows
