"""The meta leader is cut off from the other two nodes mid-job (its routes dropped by the harness's proxy),
then the partition heals.

Clients connected to the cut node still reach it, but it has no quorum: its JetStream calls answer 503 or
time out, while the two others elect a leader (several seconds) and carry on. A second job is started during
the partition (a Start answered 503 is retried, as a person would). The first job ends during the partition:
the delete of its stream lands while there is no meta leader and is refused.

Fixes off: the job ends SUCCESS but its stream stays behind for good (nobody retries the delete); results of
tasks redelivered during the election may be stored twice. Fixes on: the deferred cleanup is retried by the
sweep, both jobs end SUCCESS, every image counted once.

The incident rests on timing: the first job must end before the new meta leader is elected (every run so
far on a loaded two-core machine).
"""

from scenarios.base import Ctx, scenario
from scenarios.evidence import Evidence


def _stream_left_behind(history, snapshot) -> bool:
    return any(job["status"] == "SUCCESS" and (job.get("queue") or {}).get("stream_exists")
               for job in snapshot.get("jobs", {}).values())


@scenario(expect_off={"no_leftover_queue"},
          evidence=Evidence("a job ended SUCCESS with its stream still there after the heal", _stream_left_behind),
          guards={"cleanup_on_terminal"}, targets={"sandbox"}, targets_why="needs the harness's 3-node NATS cluster")
def run(ctx: Ctx) -> None:
    job = ctx.job(images=40)
    later = ctx.job(images=10, start=False)
    ctx.workers("healthy", background=True, batch_size=2)
    ctx.wait_for_progress(job, processed=4)
    ctx.fault("nats-partition", leader=True)
    ctx.start(later)
    ctx.sleep(4 * ctx.ack_wait, "the old meta leader is cut off")
    ctx.heal_all()
