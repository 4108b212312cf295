"""Seed 000: tasks exhaust max_deliver while crash-looping workers keep polling; the job stays STARTED.

Workers reserve tasks and die before posting a result, again and again, until NATS has delivered
every task max_deliver times and gives up on it. Nothing tells Django: the result path is the only
place that updates a job, and it never runs.

Fixes off: the job is STARTED forever; NATS shows 0 pending, 0 in flight, every task dead.
Fixes on (the /tasks/ check alone, beat sweep switched off): the next empty poll fails the job, with
"4 of 6 tasks exhausted max_deliver=3" and the dead letters on its log.
"""

from scenarios.base import Ctx, scenario
from scenarios.evidence import still_started


@scenario(on_head="HEAD's jobs_health_check marks the dead images failed once the job has been idle for Job.STALLED_JOBS_MAX_MINUTES, and more than half failed ends it FAILURE: the job does not stay STARTED (production: 10 min idle, checked every 15 min; compressed here to 6 s and 2 s)",
          expect_off={"terminal_within_bound", "progress_consistent"}, settings={"FIX_SWEEP": "0"},
          evidence=still_started(lambda q: q.get("stream_exists") and q.get("num_pending") == 0
                                 and q.get("num_ack_pending") == 0, "its tasks exhausted (none pending or in flight)"),
          guards={"inline_reaper"})
def run(ctx: Ctx) -> None:
    job = ctx.job(images=6)
    ctx.work(job, tasks=2)  # two results arrive, then the fleet goes bad
    ctx.fault("reserve-and-vanish", job=job, repeat=True)
    ctx.sleep(ctx.exhaustion, "every task is delivered max_deliver times and never answered")
    ctx.heal_all()  # the workers are fixed and come back polling
    ctx.workers("healthy", job, background=True)
