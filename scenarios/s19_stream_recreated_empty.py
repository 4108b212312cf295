"""The job's stream is re-created empty mid-job (a restore that brought back the definitions, not the data).

The stream and its consumer exist again under the same names, holding nothing. Workers polling /tasks/
get an empty list, and a quiescent consumer over an empty stream reads exactly like a job whose tasks
were never published yet.

Fixes off: STARTED forever ("no task published yet"). Fixes on: the attempt's own record says 5 tasks
were published; the job fails naming the 3 images that can never be handed out ("lost writes: the
stream is empty, 5 were published").
"""

from scenarios.base import Ctx, scenario
from scenarios.evidence import lost_unnamed


@scenario(expect_off={"lost_tasks_named"},
          evidence=lost_unnamed(lambda q, job: q.get("stream_exists") and q.get("last_seq") == 0,
                                "its stream there but empty"),
          guards={"stream_lost_detection"})
def run(ctx: Ctx) -> None:
    job = ctx.job(images=5)
    ctx.work(job, tasks=2)
    ctx.fault("stream-recreate", job=job)
    ctx.workers("healthy", job, background=True)
