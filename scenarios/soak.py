"""Random fault schedules over random jobs, each one reproducible from its seed.

`schedule(seed)` turns a seed into plain data — jobs, workers, a list of (pause, fault, args) — and a
Scenario that plays it. The same seed gives the same schedule (the timing of the real servers is
what varies), so a violation is replayed with `chaos run soak-<seed> --fixes on --seed <seed>`.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from harness.chaos import FAULTS
from harness.settings import RunSettings
from scenarios.base import Ctx, Scenario

# Faults a healthy deployment must survive: every job still ends, with a reason when it fails.
SOAK_FAULTS = ("nats-pause", "nats-restart", "nats-kill", "redis-restart", "redis-flush", "web-kill",
               "web-restart", "beat-down", "worker-kill", "reserve-and-vanish", "revoke", "double-start",
               "celery-down", "nats-lose-writes")
# On a 3-node cluster (CHAOS_NATS=cluster3 or cluster3-netns) the node faults join them (a quorum lost for a few
# seconds must fail nothing). nats-lose-writes JOB --tail leaves them: it cuts the stream's block files only,
# and the cluster replays the cut tail from its raft log (a crash losing both is every node crashing at once: c05)
CLUSTER_SOAK_FAULTS = (*(verb for verb in SOAK_FAULTS if verb != "nats-lose-writes"), "nats-kill-follower",
                       "nats-kill-stream-leader", "nats-kill-meta-leader", "nats-lose-quorum", "nats-node-wipe",
                       "nats-partition", "nats-partition")


def soak_faults() -> tuple[str, ...]:
    from harness.infra.stack import is_cluster

    return CLUSTER_SOAK_FAULTS if is_cluster() else SOAK_FAULTS


@dataclass(frozen=True)
class Step:
    pause: float  # seconds before the fault
    verb: str
    args: dict
    hold: float = 0.0  # a lasting fault is healed after this long

    def describe(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.args.items())
        held = f", healed after {self.hold:.1f}s" if self.hold else ""
        return f"after {self.pause:.1f}s: {self.verb}({args}){held}"


def _step(rng: random.Random, jobs: int, faults: tuple[str, ...] = SOAK_FAULTS) -> Step:
    verb = rng.choice(faults)
    fault, args, hold = FAULTS[verb], {}, 0.0
    if fault.positional == "job":
        args["job"] = rng.randrange(jobs)  # an index into the run's jobs
    if fault.timed:
        args["seconds"] = round(rng.uniform(0.5, 3.0), 1)
    elif not fault.one_shot and verb != "reserve-and-vanish":
        hold = round(rng.uniform(0.5, 3.0), 1)
    if verb == "nats-restart":
        args["wipe"] = rng.random() < 0.3
    if verb == "nats-lose-writes":
        args["tail"] = rng.randint(1, 5)  # the crash loses the job's last few publishes (lazy fsync)
    if verb == "nats-partition":
        args["leader"] = rng.random() < 0.5
    if verb in ("reserve-and-vanish", "worker-kill"):
        args["batch"] = rng.choice([2, 5, 10])
    return Step(round(rng.uniform(0.2, 2.0), 1), verb, args, hold)


def schedule(seed: int) -> Scenario:
    rng = random.Random(seed)
    images = [rng.randint(20, 200) for _ in range(rng.randint(1, 3))]
    workers, batch = rng.randint(1, 2), rng.choice([1, 2, 4, 8])  # slow enough that faults hit running jobs
    faults = soak_faults()
    steps = [_step(rng, len(images), faults) for _ in range(rng.randint(1, 4))]

    def run(ctx: Ctx) -> None:
        jobs = [ctx.job(images=n) for n in images]
        ctx.workers("healthy", count=workers, background=True, batch_size=batch)
        for step in steps:
            ctx.sleep(step.pause)
            args = {**step.args, **({"job": jobs[step.args["job"]]} if "job" in step.args else {})}
            ctx.fault(step.verb, **args)
            if step.hold:
                ctx.sleep(step.hold, f"{step.verb} in force")
                ctx.heal_all()

    doc = (f"Soak schedule {seed}: {len(images)} job(s) of {', '.join(map(str, images))} images, {workers} healthy "
           f"worker(s) (batch {batch}), then:\n\n" + "\n".join(f"- {step.describe()}" for step in steps) +
           "\n\nEvery invariant must hold with the fixes on.\n")
    bound = SETTLE_BOUND + RunSettings().result_backlog_grace + work_time(sum(images), workers, batch)
    return Scenario(f"soak-{seed}", doc, run, control=True, bound=bound)


# What a schedule's faults may take to be noticed and ended: the default settle bound, plus the time results
# accepted before a Redis wipe (which takes the task queue with them) keep their job from being judged
SETTLE_BOUND = 14.0
CYCLES_PER_SECOND = 4.0  # a healthy worker's reserve + post cycles per second, conservatively (about 10 measured)


def work_time(images: int, workers: int, batch: int) -> float:
    """Seconds healthy workers may need for every image after the faults: a slow job still moving at the
    settle bound is not a stuck one (one worker taking 2 at a time needs about 20 s for 450 images)."""
    return images / (workers * batch * CYCLES_PER_SECOND)


def seeds(seed: int, count: int) -> list[int]:
    """The schedule seeds of one soak run: reproducible from its own seed."""
    rng = random.Random(seed)
    return [rng.randrange(1, 10**9) for _ in range(count)]


@dataclass(frozen=True)
class Played:
    """One schedule's outcome in a soak: its place in the run, its seed, and the run's report."""

    index: int
    seed: int
    report: object  # scenarios.runner.RunReport
    lane: int

    @property
    def held(self) -> bool:
        return self.report.composed.ok is True

    @property
    def steps(self) -> str:
        return "; ".join(line.removeprefix("- ") for line in self.report.scenario.doc.splitlines()
                         if line.startswith("- "))


def play(seed_list: list[int], build_stack, fixes: str, lanes: int = 1,
         on_played: Callable[[Played], None] = lambda played: None,
         on_note: Callable[[int, str], None] = lambda lane, text: None,
         stop: threading.Event | None = None) -> list[Played]:
    """Run the schedules of `seed_list` on `lanes` stacks at once, each stack started by `build_stack()`
    and used for one schedule after another; returns every outcome in the order they ended. A lane whose
    stack does not start ends; the others go on with the schedules left."""
    from scenarios.runner import run

    queue = list(enumerate(seed_list, 1))
    lock, played = threading.Lock(), []
    stop = stop or threading.Event()

    def next_schedule():
        with lock:
            return None if stop.is_set() or not queue else queue.pop(0)

    def lane(number: int) -> None:
        on_note(number, "starting a stack")
        try:
            stack = build_stack().start()
        except Exception as exc:
            on_note(number, f"its stack did not start, the lane ends: {exc!r}")
            raise
        try:
            while (item := next_schedule()) is not None:
                index, sub = item
                outcome = run(schedule(sub), stack, fixes, seed=sub,
                              on_note=lambda text, index=index: on_note(number, f"schedule {index}: {text}"))
                result = Played(index, sub, outcome, number)
                with lock:
                    played.append(result)
                on_played(result)
        finally:
            on_note(number, "stopping its stack")
            stack.stop(graceful=False)

    pool = ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="soak-lane")
    futures = [pool.submit(lane, number) for number in range(1, lanes + 1)]
    try:
        errors = [future.exception() for future in futures]
    except KeyboardInterrupt:
        stop.set()  # each lane ends its schedule, then stops its stack
        raise
    finally:
        pool.shutdown(wait=True)
    if queue and not stop.is_set() and (failed := next((e for e in errors if e is not None), None)):
        raise failed  # every lane died before the schedules ran out
    return played
