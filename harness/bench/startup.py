"""(e) How long a whole Stack takes to start (Stack.timings), from the migrated snapshot when there is one.

Each run starts and stops a fresh stack; steps overlap (servers start together, then web + Celery), so
the steps do not add up to the total. The first run on a machine also pays for migrate and the snapshot.
"""

from __future__ import annotations

import statistics

from harness.bench.common import Measurement
from harness.infra.bench_startup import bench

STEPS = ("nats", "redis", "postgres", "postgres_init", "migrate_and_token", "web", "celery_worker",
         "celery_beat", "total", "stop")


def run(runs: int = 3) -> list[Measurement]:
    results = bench(runs)
    rows = []
    for step in STEPS:
        values = [result[step] for result in results if step in result]
        if values:
            note = f"median of {len(values)}; min {min(values):.2f} max {max(values):.2f}"
            rows.append(Measurement("startup", step, statistics.median(values), "s", note))
    return rows
