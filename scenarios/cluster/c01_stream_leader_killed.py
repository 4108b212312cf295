"""The leader of a running job's stream is killed (-9); the cluster elects another and the node comes back.

During the election JetStream answers the job's pulls and stream lookups with 503s or not at all: that is
NATS unreachable, never the stream lost. Workers keep polling through it.

Both modes: the job ends SUCCESS, every image counted once, no task handed out twice in one attempt.
"""

from scenarios.base import Ctx, scenario
from scenarios.cluster import node_hit_and_jobs_succeeded


@scenario(control=True, evidence=node_hit_and_jobs_succeeded("nats-kill-stream-leader"), targets={"sandbox"},
          targets_why="needs the harness's 3-node NATS cluster")
def run(ctx: Ctx) -> None:
    job = ctx.job(images=40)
    ctx.workers("healthy", job, background=True, batch_size=2)
    ctx.wait_for_progress(job, processed=4)
    ctx.fault("nats-kill-stream-leader", job=job)
    ctx.sleep(3 * ctx.ack_wait, "the stream's leader is down: an election")
    ctx.heal_all()
