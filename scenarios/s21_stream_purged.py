"""The job's stream is purged mid-job (an operator clearing what looks like a stuck queue).

The stream and consumer stay; every task, done or not, is gone, and the consumer has nothing pending.
Workers polling /tasks/ get an empty list.

Fixes off: STARTED forever. Fixes on: the job fails naming the 3 images that can never be handed out
("purged: 5 were published, it holds 0 (seq 6..5), younger than max_age …").
"""

from scenarios.base import Ctx, scenario
from scenarios.evidence import lost_unnamed


@scenario(expect_off={"lost_tasks_named"},
          evidence=lost_unnamed(lambda q, job: q.get("stream_exists") and q.get("first_seq", 0) > job["images"],
                                "its stream purged"),
          guards={"stream_lost_detection"})
def run(ctx: Ctx) -> None:
    job = ctx.job(images=5)
    ctx.work(job, tasks=2)
    ctx.fault("stream-purge", job=job)
    ctx.workers("healthy", job, background=True)
