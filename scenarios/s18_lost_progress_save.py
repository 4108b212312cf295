"""Two result tasks of one job update its progress at the same time, and one update is lost.

Antenna's result task reads the job row, changes its progress JSON and saves it back, without a row lock
(removed in #1261 for throughput). When a slower task saves a copy it read before a faster task's save, the
faster task's progress is lost: the job's last images are stored and acked, yet the job never completes,
until the watchdog revokes it as stalled. Measured on HEAD once in 9 plain jobs; here the race is forced:
the fifth result's progress save is held between its read and its write until the sixth, last result has
saved further progress (at most HOLD seconds). The first four results are stored one at a time, each with
both its stages saved before the next: posted together, they race on HEAD already (a lost save among them
left the setup waiting for progress that never came).

Antenna's watchdog runs with a 30 s idle rule here, not the usual 6 s: the setup must not be revoked on a cold
or loaded stack before the race is armed, and the hold must end well inside the rule. The bound covers the
rule, so the off run still ends (REVOKED) before it is judged.

Fixes off (Antenna HEAD): every result stored, the job does not end SUCCESS (REVOKED by the watchdog).
Fixes on: the result task holds the job's row lock, so the two updates are serialised: SUCCESS.
"""

from scenarios.base import Ctx, scenario
from scenarios.evidence import finished_but_not_completed

STALLED_SECONDS = 30.0  # Antenna's idle rule for this run
HOLD = 15.0  # seconds the fifth save waits at most for the sixth's (with fixes on: all of them, the row is locked)
HEALTH_CHECK = 2.0  # the stack's health-check interval (stack.KNOBS)
SAVED = "progress in stage 'results'"  # what Antenna logs when a result task saves its last stage


@scenario(expect_off={"not_failed_with_results_in_hand"}, evidence=finished_but_not_completed(),
          settings={"STALLED_MINUTES": str(STALLED_SECONDS / 60)},
          bound=STALLED_SECONDS + 2 * HEALTH_CHECK + 10,
          targets={"antenna"}, targets_why="the race is forced by a hook in Antenna's overlay; the sandbox stores "
                                           "results under the job's row lock")
def run(ctx: Ctx) -> None:
    job = ctx.job(images=6)
    tasks = ctx.reserve(job, batch=6)
    for done, task in enumerate(tasks[:4], 1):  # one at a time: on HEAD, results saved together race already
        ctx.post(job, [task])
        ctx.wait_for_log(job, SAVED, count=done)  # both its stages saved (the results stage comes last)
    ctx.fault("progress-save-race", job=job, seconds=HOLD)
    ctx.post(job, tasks[4:5])
    ctx.wait_for_redis_progress(job, processed=5)  # counted: its save, next, is the one held
    ctx.post(job, tasks[5:])  # the last result completes the job's progress while the fifth's save is held
