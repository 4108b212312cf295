"""A follower node restarts with its JetStream store deleted mid-job (ephemeral storage under one node).

The node rejoins empty and catches up from its peers: with replicas 3 the job's stream never lost quorum,
so nothing is lost and no job may fail for it.

Both modes: the job ends SUCCESS, every image counted once.
"""

from scenarios.base import Ctx, scenario
from scenarios.cluster import node_hit_and_jobs_succeeded


@scenario(control=True, evidence=node_hit_and_jobs_succeeded("nats-node-wipe"), targets={"sandbox"},
          targets_why="needs the harness's 3-node NATS cluster")
def run(ctx: Ctx) -> None:
    job = ctx.job(images=40)
    ctx.workers("healthy", job, background=True, batch_size=2)
    ctx.wait_for_progress(job, processed=4)
    ctx.fault("nats-node-wipe")
