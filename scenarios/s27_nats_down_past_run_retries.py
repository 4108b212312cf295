"""NATS stays down longer than a Start's `run_job` retries its publish (30 × 1 s in the sandbox; 3 here).

The run gives up with an error on the job's log, and nothing runs the attempt again: the job stays
PENDING, and every later Start is refused (409).

Fixes off: the job stays PENDING for good with the run's error on its log.
Fixes on: after start_timeout the sweep enqueues the run again; NATS is back, the job ends SUCCESS.
"""

from scenarios.base import Ctx, scenario
from scenarios.evidence import still
from scenarios.s25_start_run_flushed_from_broker import WHY_SANDBOX


@scenario(expect_off={"terminal_within_bound"}, evidence=still("PENDING", "its run gave up on NATS"),
          settings={"START_TIMEOUT": "10", "RUN_JOB_RETRIES": "3"}, guards={"sweep"}, targets={"sandbox"},
          targets_why=WHY_SANDBOX)
def run(ctx: Ctx) -> None:
    job = ctx.job(images=4, start=False)
    ctx.fault("celery-down")
    ctx.start(job, wait=False)  # PENDING; its run_job waits in the broker's queue
    ctx.fault("nats-kill")
    ctx.heal("celery-down")
    ctx.wait_for_log(job, "failed: ")  # run_job used up its retries (start_timeout is longer than them)
    ctx.heal_all()
    ctx.workers("healthy", job, background=True)
