"""Seed 000, Option B: every worker took its batch and died, and none polls any more.

With nobody fetching, NATS never even redelivers: the tasks sit "in flight" forever, the delivery
count does not grow, no advisory is sent. Only a periodic check can notice.

Fixes off: STARTED forever with num_ack_pending = 5.
Fixes on: the beat sweep sees no delivery activity for longer than ack_wait + grace, twice, and fails
the job: "5 tasks waiting, no worker has fetched for …".
"""

from scenarios.base import Ctx, scenario
from scenarios.evidence import still_started


@scenario(on_head="HEAD's jobs_health_check ends the job FAILURE after the idle rule (production: 10 min idle, checked every 15 min; compressed here to 6 s and 2 s); no ERROR line says why",
          expect_off={"terminal_within_bound"},
          evidence=still_started(lambda q: (q.get("num_ack_pending") or 0) > 0,
                                 "its tasks in flight to workers that are gone (num_ack_pending > 0)"),
          guards={"sweep", "stuck_detection"})
def run(ctx: Ctx) -> None:
    job = ctx.job(images=5)
    ctx.fault("reserve-and-vanish", job=job)  # the whole fleet reserves once and dies
    ctx.sleep(ctx.exhaustion, "no worker polls again")
