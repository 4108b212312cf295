"""Results of attempt 1 wait in the Celery queue while the job is cancelled and started again.

The soak found it (seed 479525746): a result was accepted for attempt 1, its Celery task was retried
because NATS was down, and the retry ran after a second Start. It stored the attempt-1 result in
attempt 2. Fencing refuses a stale reply subject when the result is posted; a result that was current
when it was posted and is stored only after the next Start is not fenced again.

Here the Celery worker is down while a worker posts attempt 1's results, so they wait in the queue;
then the job is cancelled and started again, and the Celery worker comes back.

Fixes off: the queued attempt-1 results are stored in attempt 2, and the Start publishes on top.
Fixes on: the Celery task fences each result again under the job-row lock, so attempt 1's results are
dropped (neither stored, counted nor acked) and attempt 2 runs to SUCCESS on its own results.
"""

from scenarios.base import REDONE_AT_RANDOM, Ctx, scenario
from scenarios.evidence import stale_result_stored


@scenario(head_unjudged=REDONE_AT_RANDOM,
          expect_off={"no_stale_results"}, evidence=stale_result_stored(), guards={"fencing"})
def run(ctx: Ctx) -> None:
    job = ctx.job(images=4)
    ctx.fault("celery-down")  # accepted results wait in the queue
    ctx.post(job, ctx.reserve(job, batch=4))
    ctx.cancel(job)
    ctx.start(job, wait=False)  # the Start is queued behind them
    ctx.heal_all()  # the Celery worker is back: attempt 1's results first, then the Start
    ctx.workers("healthy", job, background=True)
