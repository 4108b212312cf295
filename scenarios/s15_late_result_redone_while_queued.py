"""A worker answers late, near the end of its task's ack_wait, while results queue behind a busy Celery.

The result is accepted ("queued") but nothing acks NATS until Celery stores it, so when the task's first
ack_wait runs out NATS hands it to the next worker that polls: work that is done gets done again, a
moment after its result was accepted. A GPU fleet pays for every such task twice.
Fixes off: the task is handed out again about 0.3 × ack_wait after its result was accepted.
Fixes on: accepting a result restarts its task's ack_wait (+WPI, `extend_on_result`), so nobody gets it
again for a whole ack_wait; once Celery is back the job ends SUCCESS with one result per image.

The polling worker starts before the answer, and the answer comes at 0.7 × ack_wait, so on a loaded machine
the redelivery still lands within the half ack_wait after it that the check judges. Antenna's watchdog runs
with a 30 s idle rule here: the job makes no progress while Celery is down, and at 6 s a loaded machine let
HEAD's health check mark the queued images failed.
"""

from scenarios.base import Ctx, scenario
from scenarios.evidence import redone_soon_after_accepted


@scenario(expect_off={"no_early_redelivery"}, evidence=redone_soon_after_accepted(), guards={"extend_on_result"},
          settings={"STALLED_MINUTES": "0.5"})
def run(ctx: Ctx) -> None:
    job = ctx.job(images=3)
    ctx.fault("celery-down")  # accepted results wait in the queue
    held = ctx.reserve(job, batch=3)
    ctx.workers("healthy", job, background=True)  # polls: would get a task NATS hands out again
    ctx.sleep(0.7 * ctx.ack_wait, "the worker needs most of the task's ack_wait")
    ctx.post(job, held)
    ctx.sleep(ctx.ack_wait, "the task's first ack_wait runs out while its result waits in the queue")
    ctx.heal_all()  # Celery is back and stores the backlog
