"""A worker answers late, near the end of its task's ack_wait, while results queue behind a busy Celery.

The result is accepted ("queued") but nothing acks NATS until Celery stores it, so when the task's first
ack_wait runs out NATS hands it to the next worker that polls: work that is done gets done again, a
moment after its result was accepted. A GPU fleet pays for every such task twice.
Fixes off: the task is handed out again about 0.2 × ack_wait after its result was accepted.
Fixes on: accepting a result restarts its task's ack_wait (+WPI, `extend_on_result`), so nobody gets it
again for a whole ack_wait; once Celery is back the job ends SUCCESS with one result per image.
"""

from scenarios.base import Ctx, scenario
from scenarios.evidence import redone_soon_after_accepted


@scenario(expect_off={"no_early_redelivery"}, evidence=redone_soon_after_accepted(), guards={"extend_on_result"})
def run(ctx: Ctx) -> None:
    job = ctx.job(images=3)
    ctx.fault("celery-down")  # accepted results wait in the queue
    held = ctx.reserve(job, batch=3)
    ctx.sleep(0.8 * ctx.ack_wait, "the worker needs most of the task's ack_wait")
    ctx.post(job, held)
    ctx.workers("healthy", job, background=True)  # polls: would get a task NATS hands out again
    ctx.sleep(ctx.ack_wait, "the task's first ack_wait runs out while its result waits in the queue")
    ctx.heal_all()  # Celery is back and stores the backlog
