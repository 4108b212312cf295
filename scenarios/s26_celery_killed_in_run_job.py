"""The Celery worker is SIGKILLed while it runs a Start's `run_job` (an OOM kill, a deploy's kill -9).

`run_job` is acked when a worker takes it (not acks_late): once that worker dies, nothing runs the attempt
again. Here the run hangs in its publish (NATS frozen) when the worker is killed.

Fixes off: the job stays PENDING for good, nothing published.
Fixes on: after start_timeout the sweep enqueues the run again; it publishes (the stream and consumer
the killed run may have created are reused, Nats-Msg-Id keeps each task once) and the job ends SUCCESS.
"""

from scenarios.base import Ctx, scenario
from scenarios.evidence import still
from scenarios.s25_start_run_flushed_from_broker import WHY_SANDBOX


@scenario(expect_off={"terminal_within_bound"}, evidence=still("PENDING", "its run killed with its Celery worker"),
          settings={"START_TIMEOUT": "8"}, guards={"sweep"}, targets={"sandbox"}, targets_why=WHY_SANDBOX)
def run(ctx: Ctx) -> None:
    job = ctx.job(images=4, start=False)
    ctx.fault("celery-down")
    ctx.start(job, wait=False)  # PENDING; its run_job waits in the broker's queue
    ctx.fault("nats-freeze")  # so the run hangs in its publish
    ctx.heal("celery-down")
    ctx.wait_for_log(job, "Collected ")  # run_job has been taken (and acked) and is publishing
    ctx.fault("celery-kill")
    ctx.heal("nats-freeze")
    ctx.heal_all()  # a new worker: nothing in the broker for it
    ctx.workers("healthy", job, background=True)
