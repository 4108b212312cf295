"""Redis is flushed mid-job (eviction, a failover to an empty replica, FLUSHALL by mistake).

The job's progress sets are gone. Antenna already handles the next result: it finds the state
missing and fails the job with a reason (#1162), so both modes end in FAILURE with an ERROR line.
The difference is what stays behind: without the fixes the failed job's stream and consumer are
never deleted.

Fixes off: FAILURE "Job state missing in Redis", but stream and consumer left in NATS.
Fixes on: the same FAILURE, and the transition hook deletes the queue.
"""

from scenarios.base import Ctx, scenario
from scenarios.evidence import left_behind


@scenario(on_head="HEAD fails the job when its Redis state is gone ('Job state keys not found in Redis') and deletes its stream",
          expect_off={"no_leftover_queue"}, evidence=left_behind("FAILURE"), guards={"cleanup_on_terminal"})
def run(ctx: Ctx) -> None:
    job = ctx.job(images=6)
    ctx.work(job, tasks=2)
    ctx.fault("redis-flush")
    ctx.workers("healthy", job, background=True)
