"""The queued run of a Start is flushed from the broker before a Celery worker takes it.

Start commits the job PENDING and queues `run_job` in Redis. The worker pool is down (a deploy), and the
broker's queue is flushed (FLUSHALL, a failover to an empty replica) before it comes back: nothing will
ever run the job's attempt, and PENDING is a busy state, so every later Start is refused (409).

Fixes off: the job stays PENDING for good, nothing published.
Fixes on: the sweep sees the attempt has published nothing start_timeout after its Start and enqueues
its run again (JobBinding.rerun); the job runs and ends SUCCESS.
"""

from scenarios.base import Ctx, scenario
from scenarios.evidence import still

WHY_SANDBOX = ("Antenna HEAD's own jobs_health_check (check_stale_jobs) revokes a PENDING or CANCELING job after "
               "STALLED_JOBS_MAX_MINUTES idle (6 s in the overlay), so nothing stays stuck there with the fixes off; "
               "the PR fails a run that cannot reach NATS at once (no retries), and its binding has no rerun yet: "
               "docs/scenarios.md, 'Jobs held up before NATS'")


@scenario(expect_off={"terminal_within_bound"}, evidence=still("PENDING", "its run flushed from the broker"),
          settings={"START_TIMEOUT": "3"}, guards={"sweep"}, targets={"sandbox"}, targets_why=WHY_SANDBOX)
def run(ctx: Ctx) -> None:
    job = ctx.job(images=4, start=False)
    ctx.fault("celery-down")
    ctx.start(job, wait=False)  # PENDING; its run_job waits in the broker's queue
    ctx.fault("redis-flush")  # ... and is gone
    ctx.heal_all()  # the worker pool is back, with nothing to run
    ctx.workers("healthy", job, background=True)
