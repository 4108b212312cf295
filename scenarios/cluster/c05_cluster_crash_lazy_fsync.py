"""Every node of the cluster crashes at once while its lazily fsynced store holds acknowledged publishes
(the Jepsen NATS 2.12.1 finding): each node comes back with what its disk held before the job started.

The stream's creation and every task publish were acknowledged by a quorum, yet none had reached a disk:
after the crash no node has the stream, and the cluster agrees it never existed. Replication does not help
when every replica loses the same unsynced tail.

Fixes off: STARTED forever, workers told there is nothing to do. Fixes on: the job fails naming the loss
("NATS stream job_N is gone (server restarted …); 3 of 5 tasks have no result").
"""

from scenarios.base import Ctx, scenario
from scenarios.evidence import lost_unnamed


@scenario(expect_off={"lost_tasks_named"},
          evidence=lost_unnamed(lambda q, job: q.get("stream_exists") is False, "its stream rolled back out of "
                                "every node's store"),
          guards={"stream_lost_detection"}, targets={"sandbox"}, targets_why="needs the harness's 3-node NATS cluster")
def run(ctx: Ctx) -> None:
    job = ctx.job(images=5, start=False)
    ctx.fault("nats-disk-mark")
    ctx.start(job)
    ctx.work(job, tasks=2)
    ctx.wait_for_progress(job, processed=2)
    ctx.fault("nats-lose-writes")
    ctx.workers("healthy", job, background=True)
