"""A worker process is SIGKILLed while it holds a reserved batch (OOM killer, node drain).

Its five tasks stay in flight until ack_wait runs out; then NATS redelivers them to the healthy
workers and the job completes. This is the path NATS handles by itself, so it is a control: it
guards against fixes that would fail a job which is merely waiting for a redelivery.

Fixes off: SUCCESS after redelivery (measured: no invariant tells the modes apart).
Fixes on: the same; the reaper must not fail the job while the killed worker's tasks wait out ack_wait.
"""

from scenarios.base import REDONE_AT_RANDOM, Ctx, scenario
from scenarios.evidence import redelivered


@scenario(head_unjudged=REDONE_AT_RANDOM,
          control=True, evidence=redelivered(True))
def run(ctx: Ctx) -> None:
    job = ctx.job(images=12)
    ctx.fault("worker-kill", job=job, batch=5)
    ctx.workers("healthy", job, count=2, background=True)  # they get the five back after ack_wait
