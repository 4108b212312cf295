"""The job's NATS consumer disappears mid-job (an operator, a half-done cleanup, a lost consumer state).

Antenna HEAD re-creates a missing consumer on the next `/tasks/` with deliver_policy=all: under Limits
retention the stream still holds every task, acked ones too, so every image already done is handed out
again as a fresh delivery.

Fixes off (Antenna HEAD): the done images are handed out again. Fixes on: the tasks are never replayed —
the job goes on from the tasks not yet done, or fails naming the lost consumer.
"""

from scenarios.base import Ctx, scenario
from scenarios.evidence import replayed


@scenario(expect_off={"no_replayed_tasks"}, evidence=replayed(), targets={"antenna"},
          targets_why="the sandbox mirrors the Antenna of the incidents, which never re-created a missing consumer")
def run(ctx: Ctx) -> None:
    job = ctx.job(images=12)
    ctx.work(job, tasks=6)
    # The six results are stored and acked. Not read off the job's progress: on Antenna HEAD six results saved
    # at once race, and a lost save can leave `processed` short of 6 for good.
    ctx.wait_for_log(job, "progress in stage 'results'", count=6)
    ctx.wait_for_acked(job)
    ctx.fault("consumer-delete", job=job)
    ctx.workers("healthy", job, count=1, background=True)
