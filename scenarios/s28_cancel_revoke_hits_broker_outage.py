"""A cancel whose Celery revoke hits a broker outage.

Cancel commits CANCELING, then revokes the job's Celery task through the broker (Redis). With Redis down
the revoke raises, the cancel answers 503, and nothing ever moves the job on: CANCELING is a busy state,
so every later Start is refused (409).

Fixes off: the job stays CANCELING for good.
Fixes on: the sweep ends the cancel start_timeout after it first saw it (JobBinding.revoke): REVOKED,
with the reason on the job's log.
"""

from scenarios.base import Ctx, scenario
from scenarios.evidence import still
from scenarios.s25_start_run_flushed_from_broker import WHY_SANDBOX


@scenario(expect_off={"terminal_within_bound"}, evidence=still("CANCELING", "its revoke lost to a broker outage"),
          settings={"START_TIMEOUT": "3"}, guards={"sweep"}, targets={"sandbox"}, targets_why=WHY_SANDBOX)
def run(ctx: Ctx) -> None:
    job = ctx.job(images=6)
    ctx.work(job, tasks=2)
    ctx.fault("celery-down")  # not connected when Redis dies: a worker can die on that (issue 12, §6)
    ctx.fault("redis-kill")
    ctx.cancel(job)  # CANCELING committed, the revoke raises
    ctx.heal_all()  # Redis first, then the worker
