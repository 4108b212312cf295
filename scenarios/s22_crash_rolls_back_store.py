"""NATS crashes with lazy fsync and comes back with its store as it was on the disk before the job started.

nats-server syncs its store every `sync_interval` (2 min by default): everything acknowledged since the
last sync lives in the page cache only. Here the disk was last synced before Start; the stream's
creation and all five acknowledged publishes are lost with the crash, while the rest of the store (the
advisory stream, other jobs) comes back as it was.

Fixes off: STARTED forever, workers told there is nothing to do. Fixes on: the job fails on the first
look after the crash, naming the cause from the server id recorded at the publish ("NATS stream job_N is
gone (server restarted: id A → B); 3 of 5 tasks have no result").

Antenna's watchdog runs with a 30 s idle rule here, not the usual 6 s: on a loaded machine the setup
(Start, two results stored) took 7 s once, and HEAD's health check failed the job before the crash.
"""

from scenarios.base import Ctx, scenario
from scenarios.evidence import lost_unnamed


@scenario(expect_off={"lost_tasks_named"},
          evidence=lost_unnamed(lambda q, job: q.get("stream_exists") is False, "its stream rolled back out of the store"),
          guards={"stream_lost_detection"}, settings={"STALLED_MINUTES": "0.5"})
def run(ctx: Ctx) -> None:
    job = ctx.job(images=5, start=False)
    ctx.fault("nats-disk-mark")
    ctx.start(job)
    ctx.work(job, tasks=2)
    ctx.wait_for_acked(job)  # both results stored and acked (HEAD may lose one of two concurrent progress saves)
    ctx.fault("nats-lose-writes")
    ctx.workers("healthy", job, background=True)
