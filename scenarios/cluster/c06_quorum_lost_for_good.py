"""Two of the three nodes die and stay dead: neither the meta group nor the job's replicated stream has a quorum.

The node left keeps its clients, but JetStream answers them "temporarily unavailable" or not at all, for as
long as the loss lasts: no task can be handed out, acked or looked at. Nothing says the job will ever go on.

Fixes off: the job stays STARTED through the whole loss; workers get 503s or empty lists.
Fixes on: once nothing has answered for the job's queue for unavailable_limit, the sweep fails the job naming
the cause ("no answer about job N's queue for 10s …: JetStream is unavailable …"), before the nodes come back.
"""

from harness.checks.liveness import unanswered_window
from scenarios.base import Ctx, scenario
from scenarios.evidence import running_while_unanswered

SETTINGS = {"UNAVAILABLE_LIMIT": "10"}


@scenario(expect_off={"unanswered_jobs_failed"}, evidence=running_while_unanswered(), settings=SETTINGS,
          guards={"stream_lost_detection"}, targets={"sandbox"}, targets_why="needs the harness's 3-node NATS cluster")
def run(ctx: Ctx) -> None:
    job = ctx.job(images=40)
    ctx.workers("healthy", job, background=True, batch_size=2)
    ctx.wait_for_progress(job, processed=4)
    ctx.fault("nats-lose-quorum", job=job)
    ctx.watch(job, ("FAILURE", "REVOKED"), unanswered_window(ctx.settings.env()), "no node can answer for its queue")
    ctx.sleep(ctx.settings.sweep_interval, "the loss lasts a little past the window")
    ctx.heal_all()
