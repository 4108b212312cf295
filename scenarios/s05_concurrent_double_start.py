"""Seed 003, variant: two Start requests for the same job arrive together (a double click, a retry).

Antenna's Start takes no lock and checks no state: both requests bump the attempt and queue a run,
and both runs publish every image.

Fixes off: both answered 200; the stream holds 40 messages for 20 images.
Fixes on: the row lock lets one through (200) and refuses the other (409); 20 messages.
"""

from scenarios.base import Ctx, scenario
from scenarios.evidence import stream_held


@scenario(expect_off={"no_duplicate_tasks"}, evidence=stream_held(2), guards={"idempotent_start"})
def run(ctx: Ctx) -> None:
    job = ctx.job(images=20, start=False)
    ctx.fault("double-start", job=job)
    ctx.wait_for(job, "STARTED")
    ctx.wait_published(job)  # every Start that was answered 200 has published
    ctx.sample()
    ctx.workers("healthy", job, count=2, background=True)
