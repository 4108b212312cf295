"""Workers post every result twice (a retried POST whose first answer was lost).

Progress is a Redis set, so a repeated image is counted once either way. But Antenna stores each
result it receives: without deduplication every image gets two stored results (duplicate
detections and classifications downstream).

Four batches of five: a repeat that lands after the job completed is ignored (the last batch's, always;
an earlier one's too when Celery runs it late), so the incident shows as long as one earlier repeat is
stored before the end.

Fixes off: 20 images, up to 35 stored results; progress still right.
Fixes on: one stored result per image and attempt.
"""

from scenarios.base import Ctx, scenario
from scenarios.evidence import stored_twice


@scenario(on_head='HEAD stores detections once per (image, bounding box): the second identical result adds no row',
          expect_off={"no_duplicate_results"}, evidence=stored_twice(), guards={"dedupe_results"})
def run(ctx: Ctx) -> None:
    job = ctx.job(images=20)
    ctx.workers("duplicate", job, batch_size=5)
