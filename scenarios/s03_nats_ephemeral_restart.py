"""Seed 000, footnote: NATS restarts with its JetStream store on ephemeral storage, mid-job.

The job's stream and consumer are simply gone. Workers polling /tasks/ get an empty list, which
looks exactly like "drained"; two results are in, three images will never be handed out again.

Fixes off: STARTED forever, stream missing, workers told there is nothing to do.
Fixes on: the inline check and the sweep see the stream gone while images remain and fail the job
("NATS stream job_N is gone (server restarted …); 3 of 5 tasks have no result").
"""

from scenarios.base import Ctx, scenario
from scenarios.evidence import still_started


@scenario(on_head="HEAD's stale-job reaper (check_stale_jobs, in jobs_health_check) REVOKES the job after the idle rule; the cause (the wiped store) is never named",
          expect_off={"terminal_within_bound", "progress_consistent"},
          evidence=still_started(lambda q: q.get("stream_exists") is False, "its stream gone with the wiped store"),
          guards={"stream_lost_detection"})
def run(ctx: Ctx) -> None:
    job = ctx.job(images=5)
    ctx.work(job, tasks=2)
    ctx.fault("nats-restart", wipe=True)
    ctx.workers("healthy", job, background=True)
