"""A slow worker posts results of attempt 1 after the job was cancelled and started again.

Its reply subjects point at the same stream name and the same sequence numbers as attempt 2's
tasks. Without fencing the old results are stored and counted as attempt 2's, and acked against
messages they never saw.

Fixes off: the stale results are counted in attempt 2 (and the restart publishes on top, too).
Fixes on: every stale result is refused per task ("rejected_stale"); attempt 2 completes on its own.
"""

from scenarios.base import Ctx, scenario
from scenarios.evidence import stale_result_stored


@scenario(head_unjudged="Antenna stores no reply subject with a result: its database cannot tell a stale result from a "
                        "current one",
          expect_off={"no_stale_results"}, evidence=stale_result_stored(), guards={"fencing"})
def run(ctx: Ctx) -> None:
    job = ctx.job(images=4)
    old = ctx.reserve(job, batch=4)
    ctx.cancel(job)
    ctx.start(job)
    ctx.post(job, old)
    ctx.workers("healthy", job, background=True)
