"""The leader of a running job's stream is killed (-9); the cluster elects another and the node comes back.

During the election JetStream answers the job's pulls and stream lookups with 503s or not at all: that is
NATS unreachable, never the stream lost. Workers keep polling through it.

Both modes: the job ends SUCCESS. Fixes on: every image counted once, no task handed out twice in one attempt.
Fixes off: depending on where the kill lands, a result may be stored twice (reported, not asserted).
"""

from scenarios.base import Ctx, scenario
from scenarios.cluster import node_hit_and_jobs_succeeded


@scenario(control=True, evidence=node_hit_and_jobs_succeeded("nats-kill-stream-leader"), targets={"sandbox"},
          targets_why="needs the harness's 3-node NATS cluster",
          off_varies="the new consumer leader redelivers at once what the old one had handed out (it keeps none of "
                     "its ack timers): without dedupe a result then lands twice, when a batch was in flight at the kill")
def run(ctx: Ctx) -> None:
    job = ctx.job(images=40)
    ctx.workers("healthy", job, background=True, batch_size=2)
    ctx.wait_for_progress(job, processed=4)
    ctx.fault("nats-kill-stream-leader", job=job)
    ctx.sleep(3 * ctx.ack_wait, "the stream's leader is down: an election")
    ctx.heal_all()
