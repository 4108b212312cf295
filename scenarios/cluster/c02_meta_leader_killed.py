"""The JetStream meta leader is killed (-9) mid-job; the others elect a new one, then the node comes back.

Until the election ends no stream can be created, looked up through the meta group or deleted (JetStream
answers 503 or times out). The job's own stream keeps its leader unless it lived on the same node.

Both modes: the job ends SUCCESS. Fixes on: every image counted once, nothing left behind.
Fixes off: when the job ends during the election, its stream is left behind (c03's incident; reported, not
asserted).
"""

from scenarios.base import Ctx, scenario
from scenarios.cluster import node_hit_and_jobs_succeeded


@scenario(control=True, evidence=node_hit_and_jobs_succeeded("nats-kill-meta-leader"), targets={"sandbox"},
          targets_why="needs the harness's 3-node NATS cluster",
          off_varies="a job that ends before the new meta leader is elected has its stream's delete refused, and "
                     "nothing retries it; a failover can also redeliver a batch in flight (a result stored twice)")
def run(ctx: Ctx) -> None:
    job = ctx.job(images=40)
    ctx.workers("healthy", job, background=True, batch_size=2)
    ctx.wait_for_progress(job, processed=4)
    ctx.fault("nats-kill-meta-leader")
    ctx.sleep(3 * ctx.ack_wait, "no meta leader: an election")
    ctx.heal_all()
