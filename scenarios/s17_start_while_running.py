"""Someone presses Start again while the job is running (Antenna issue #1283, still open at HEAD).

Antenna's Start checks no state and takes no lock: the running job goes back to PENDING, its progress
is reset, and every image is published a second time on top of the tasks still in the stream.

Fixes off: the second Start is answered 200; the stream holds up to 40 messages for 20 images (Antenna
HEAD republishes the images it has not counted yet: 36 in one run).
Fixes on: the second Start is refused (409) while the job runs; 20 messages, the job completes once.
"""

from scenarios.base import Ctx, scenario
from scenarios.evidence import stream_held


@scenario(expect_off={"no_duplicate_tasks"}, evidence=stream_held(1.5), guards={"idempotent_start"})
def run(ctx: Ctx) -> None:
    job = ctx.job(images=20)
    ctx.work(job, tasks=5)  # the job is running and has made progress
    ctx.start(job)
    ctx.wait_published(job)
    ctx.sample()
    ctx.workers("healthy", job, count=2, background=True)
