"""A slow but alive worker holds its batch for 4 × ack_wait and says so with in_progress (+WPI).

Meanwhile another worker polls and finds nothing. Nothing is dead, nothing is stuck: a reaper that
fails this job is a false positive. In-progress heartbeats keep NATS from redelivering, with or
without the fixes, so this is a control scenario.

Fixes off: SUCCESS, no task redelivered, no duplicate results.
Fixes on: the same; neither the /tasks/ check nor the sweep may fail the job.
"""

import math

from harness.waiting import slowdown
from scenarios.base import Ctx, scenario
from scenarios.evidence import redelivered


@scenario(targets={"sandbox"}, targets_why="its heartbeat, POST /tasks/in_progress/, is not in Antenna's API",
          control=True, evidence=redelivered(False))
def run(ctx: Ctx) -> None:
    job = ctx.job(images=3)
    held = ctx.reserve(job, batch=3)
    ctx.workers("healthy", job, background=True)  # polls the whole time and finds nothing
    beats = math.ceil(12 * slowdown())  # 4 × ack_wait, a heartbeat every ack_wait / (3 × slowdown)
    for _ in range(beats):
        ctx.wire.in_progress(job, [task["reply_subject"] for task in held])
        ctx.sleep(4 * ctx.ack_wait / beats)
    ctx.post(job, held)
