"""The meta leader is cut off from the other two nodes mid-job (its routes dropped by the harness's proxy),
then the partition heals.

Clients connected to the cut node still reach it, but it has no quorum: its JetStream calls answer 503 or
time out, while the two others elect a leader and carry on. A second job is started during the partition
(a Start answered 503 is retried, as a person would).

Both modes: both jobs end SUCCESS, every image counted once, no task handed out twice in one attempt.
"""

from scenarios.base import Ctx, scenario
from scenarios.cluster import node_hit_and_jobs_succeeded


@scenario(control=True, evidence=node_hit_and_jobs_succeeded("nats-partition"), targets={"sandbox"},
          targets_why="needs the harness's 3-node NATS cluster")
def run(ctx: Ctx) -> None:
    job = ctx.job(images=40)
    later = ctx.job(images=10, start=False)
    ctx.workers("healthy", background=True, batch_size=2)
    ctx.wait_for_progress(job, processed=4)
    ctx.fault("nats-partition", leader=True)
    ctx.start(later)
    ctx.sleep(4 * ctx.ack_wait, "the old meta leader is cut off")
    ctx.heal_all()
