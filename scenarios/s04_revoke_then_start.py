"""Seed 003: the watchdog REVOKEs a running job, then someone presses Start again.

REVOKE leaves the stream and consumer behind with every task still in it. Start collects again and
publishes a second round on top: twice the messages, and already-processed images processed again.

Fixes off: the stream holds 60 messages for 30 images; images get two results.
Fixes on: REVOKED deletes the queue; Start deletes leftovers first and publishes 30 once.
"""

from scenarios.base import Ctx, scenario
from scenarios.evidence import stream_held


@scenario(on_head="HEAD's REVOKE (check_stale_jobs) deletes the stream and consumer, so the next Start publishes one "
                  "round; but the revoked round's queued results then find no Redis state and the restarted job "
                  "never ends (docs/antenna.md)",
          expect_off={"no_duplicate_tasks"}, evidence=stream_held(2))
def run(ctx: Ctx) -> None:
    job = ctx.job(images=30)
    ctx.work(job, tasks=8)  # some progress before the watchdog strikes
    ctx.fault("revoke", job=job)
    ctx.start(job)
    ctx.sample()  # what the new round left in the stream before workers drain it
    ctx.workers("healthy", job, count=2, background=True)
