"""Workers post every result twice (a retried POST whose first answer was lost).

Progress is a Redis set, so a repeated image is counted once either way. But Antenna stores each
result it receives: without deduplication every image gets two stored results (duplicate
detections and classifications downstream).

Fixes off: 10 images, 20 stored results; progress still right.
Fixes on: one stored result per image and attempt.
"""

from scenarios.base import Ctx, scenario
from scenarios.evidence import stored_twice


@scenario(on_head='HEAD stores detections once per (image, bounding box): the second identical result adds no row',
          expect_off={"no_duplicate_results"}, evidence=stored_twice(), guards={"dedupe_results"})
def run(ctx: Ctx) -> None:
    job = ctx.job(images=10)
    ctx.workers("duplicate", job, batch_size=5)
