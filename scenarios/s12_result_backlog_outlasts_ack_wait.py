"""Results wait in the Celery queue longer than ack_wait × max_deliver (worker pool down, a deploy, a backlog).

Workers post every result and are told "queued", but nobody stores them yet, so nothing acks NATS.
After each ack_wait the tasks are handed out again, processed again and posted again, until
max_deliver is used up. Then the Celery worker comes back and works through the backlog. The soak
found this (seed 243423565): all 174 results were accepted, and the job failed with "108 of 174
tasks exhausted".

Both modes run with fencing and result deduplication on (FIX_FENCING=1, FIX_DEDUPE_RESULTS=1), so the
repeated posts do not also show
the duplicates of s09. The only difference between the modes is the reaper.
Both modes: SUCCESS once the backlog is processed; one stored result per image.
Without the queued-results count the /tasks/ check would see every task dead in NATS while their
results wait in the queue, fail the job, and drop the accepted results ("job is final"). With it,
the reaper leaves the job alone while results it accepted wait to be stored (for at most
result_backlog_grace seconds).

Antenna's watchdog runs with a 30 s idle rule here, not the usual 6 s: the job makes no progress while
Celery is down, and on a loaded machine the outage plus the backlog outlasts 6 s, so HEAD revoked the job
with its results still queued (production keeps the rule at 4x ack_wait x max_deliver; 6 s is only 2x).
"""

from scenarios.base import REDONE_AT_RANDOM, Ctx, scenario
from scenarios.evidence import max_deliver_exhausted


@scenario(head_unjudged=REDONE_AT_RANDOM,
          control=True, settings={"FIX_FENCING": "1", "FIX_DEDUPE_RESULTS": "1", "STALLED_MINUTES": "0.5"},
          evidence=max_deliver_exhausted())
def run(ctx: Ctx) -> None:
    job = ctx.job(images=6)
    ctx.fault("celery-down")  # results are accepted and queued, and nobody stores them
    ctx.workers("healthy", job, background=True)
    ctx.sleep(ctx.exhaustion + 2, "NATS hands every task out max_deliver times; a result is posted each time")
    ctx.heal_all()  # the Celery worker is back and works through the backlog
