"""NATS crashes with lazy fsync (Jepsen, NATS 2.12.1: acknowledged publishes lost) and the job's stream
comes back without its last tasks.

nats-server syncs its store every `sync_interval` (2 min by default). A kill -9 of the machine's page
cache leaves the stream's newest block without its tail: the publish was acknowledged, the tasks are gone.
The stream and consumer exist; workers drain the two tasks that survived and then find nothing.

Fixes off: STARTED forever with nothing left to hand out. Fixes on: the job fails naming the 3 lost
images and the cause ("lost writes: the stream ends at seq 2, 5 were published; server restarted: id A → B"),
never "exhausted max_deliver".
"""

from scenarios.base import Ctx, scenario
from scenarios.evidence import lost_unnamed


@scenario(expect_off={"lost_tasks_named"},
          evidence=lost_unnamed(lambda q, job: q.get("stream_exists") and 0 < q.get("last_seq", 0) < job["images"],
                                "its stream missing its last tasks"),
          guards={"stream_lost_detection"})
def run(ctx: Ctx) -> None:
    job = ctx.job(images=5)
    ctx.wait_published(job)  # Antenna HEAD sets STARTED before it publishes
    ctx.fault("nats-lose-writes", job=job, tail=3)
    ctx.workers("healthy", job, background=True)
