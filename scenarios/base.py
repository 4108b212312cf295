"""What a scenario is (plain data plus a `run`), and the verbs its `run(ctx)` reads like prose with."""

from __future__ import annotations

import asyncio
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from harness.chaos import Nemesis
from harness.chaos.wire import Wire, result_for
from harness.history import History
from harness.settings import RunSettings
from harness.waiting import Timeout, poll_until, slowdown
from scenarios.evidence import Evidence

FINAL = ("SUCCESS", "FAILURE", "REVOKED")
REDONE_AT_RANDOM = ("Antenna HEAD redoes results that wait in Celery longer than ack_wait (it acks only after storing "
                    "them, ~126 ms of CPU each): at compressed timings whether a run stores an image twice depends on "
                    "the machine's load, not on the scenario's fault")


@dataclass(frozen=True)
class Scenario:
    name: str  # sNN_<what_breaks>
    doc: str  # the incident, and what each mode is expected to show
    run: Callable[[Ctx], None]
    settings: dict[str, str] = field(default_factory=dict)  # CHAOS_* overrides, e.g. {"FIX_SWEEP": "0"}
    expect_off: frozenset[str] = frozenset()  # checks that must FAIL with the fixes off: the incident shows
    control: bool = False  # passes in both modes; guards against false positives, proves no regression
    bound: float | None = None  # seconds after heal-all within which every job must be terminal (x slowdown)
    known_gap: str = ""  # the fixes do not cure this yet: with them on, some check still fails (say which, why)
    evidence: Evidence | None = None  # the incident's shape with the fixes off; a control's precondition (both modes)
    guards: frozenset[str] = frozenset()  # fix switches each of which, alone off, must let the incident through
    on_head: str = ""  # Antenna HEAD with the fixes off, where it differs: why the incident does not show there
    head_unjudged: str = ""  # why a fixes-off run on Antenna HEAD cannot be judged (the fixes-on run still is)
    targets: frozenset[str] = frozenset({"sandbox", "antenna"})  # where the scenario can run
    targets_why: str = ""  # why not on the others
    off_varies: str = ""  # a control whose fixes-off verdicts depend on timing (say which, why): reported, not asserted

    @property
    def title(self) -> str:
        return self.doc.strip().splitlines()[0] if self.doc.strip() else self.name

    def stack_settings(self, fixes: str, without: str | None = None) -> dict[str, str]:
        """The CHAOS_* settings of this mode (`without`: every fix on but that switch). A switch that repeats
        the master switch is dropped, so stacks are shared between scenarios wherever they can be."""
        if without is not None:
            return RunSettings.of(self.settings, fixes="on", **{f"fix_{without}": False}).env()
        return RunSettings.of(self.settings, fixes=fixes).env()


def scenario(*, expect_off: set[str] | frozenset[str] = frozenset(), settings: dict | None = None,
             control: bool = False, bound: float | None = None, known_gap: str = "", evidence: Evidence | None = None,
             guards: set[str] | frozenset[str] = frozenset(), on_head: str = "", head_unjudged: str = "",
             targets: set[str] | frozenset[str] = frozenset({"sandbox", "antenna"}),
             targets_why: str = "", off_varies: str = "") -> Callable[[Callable], Scenario]:
    """Decorate a scenario module's `run(ctx)`: name and docstring come from the module."""
    from fixes.config import FixesConfig

    if off_varies and not control:
        raise ValueError("off_varies is for a control: a regression scenario's fixes-off run must show its incident")
    if control and (expect_off or guards):
        raise ValueError("a control scenario expects every check to pass in both modes")
    if not control and not expect_off:
        raise ValueError("a regression scenario names the checks its incident fails with the fixes off")
    if evidence is None:
        raise ValueError("say what the run must show: the incident with the fixes off, or the control's precondition")
    if set(targets) != {"sandbox", "antenna"} and not targets_why:
        raise ValueError("a scenario that runs on one target only says why (targets_why)")
    if unknown := set(guards) - set(FixesConfig.switches()):
        raise ValueError(f"no such fix switch: {sorted(unknown)}")

    def wrap(run: Callable) -> Scenario:
        module = sys.modules[run.__module__]
        return Scenario(run.__module__.rsplit(".", 1)[-1], module.__doc__ or "", run, dict(settings or {}),
                        frozenset(expect_off), control, bound, known_gap, evidence, frozenset(guards), on_head,
                        head_unjudged, frozenset(targets), targets_why, off_varies)

    return wrap


class BackgroundWorkers:
    """Simulated workers polling on their own loop until stop() (the runner stops them after settling)."""

    def __init__(self, workers: list):
        self.workers = workers
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, name="background-workers", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        async def everyone():
            await asyncio.gather(*(worker.run() for worker in self.workers), return_exceptions=True)

        try:
            self.loop.run_until_complete(everyone())
        finally:
            self.loop.close()

    def stop(self) -> None:
        if self.thread.is_alive():
            for worker in self.workers:
                self.loop.call_soon_threadsafe(worker.stop.set)
        self.thread.join(30)


class Ctx:
    """A scenario's handle on the run: jobs, worker calls, simulated workers and the nemesis."""

    def __init__(self, target, nemesis: Nemesis, history: History, jobs: list[int], seed: int, fixes: str,
                 sampler=None, on_note: Callable[[str], None] | None = None):
        self.target, self.nemesis, self.history, self.jobs = target, nemesis, history, jobs
        self.seed, self.fixes, self.sampler, self.on_note = seed, fixes, sampler, on_note
        self.random = random.Random(seed)
        self.wire = Wire(target.api_url, target.token, history, process="client",
                         create_path=target.create_path)
        self.background: list[BackgroundWorkers] = []
        self.settings = RunSettings.of(target.settings)

    @property
    def ack_wait(self) -> float:
        return self.settings.ack_wait

    @property
    def exhaustion(self) -> float:
        """Seconds until every delivered task has used up max_deliver, with a margin."""
        return self.settings.exhaustion() * slowdown()

    def note(self, text: str, record: bool = True) -> None:
        if record:
            self.history.append("scenario", "note", "ok", text)
        if self.on_note:
            self.on_note(text)

    # --- people ------------------------------------------------------------------------------------------

    def job(self, images: int, start: bool = True, judged: bool = True) -> int:
        """Create a job (and Start it, waiting for STARTED). Judged jobs are sampled and checked."""
        job = self.wire.create(images)
        if judged:
            self.jobs.append(job)
        if start:
            self.start(job)
        return job

    def start(self, job: int, wait: bool = True, retry: float = 15.0) -> int | None:
        """POST /run/ like a person would: a 503 ("NATS is away, retry later", e.g. while the web app
        reconnects after a NATS restart) is tried again for up to `retry` seconds. A request without an
        answer is not repeated: it may have landed."""
        deadline = time.monotonic() + retry
        while (code := self.wire.start(job)) == 503 and time.monotonic() < deadline:
            time.sleep(0.5)
        if wait and code == 200:
            self.wait_for(job, ("STARTED", *FINAL))
        return code

    def cancel(self, job: int) -> int | None:
        return self.wire.cancel(job)

    def status(self, job: int) -> str | None:
        """The job's status now, None when the web app does not answer."""
        try:
            response = self.wire.http.get(f"/jobs/{job}/")
        except httpx.HTTPError:
            return None
        return response.json()["status"] if response.status_code == 200 else None

    def wait_published(self, job: int, timeout: float = 30.0) -> int:
        """Until every Start of the job that was answered 2xx has published its tasks (one job-log line each)."""
        starts = sum(1 for op in self.history.of("start", "ok") if (op.value or {}).get("job") == job)

        def published(records, db):
            logs = records.read_job_details(db, [job])[job]["logs"]
            done = sum(line["message"].startswith(records.PUBLISHED) for line in logs)
            return done if done >= starts else None

        return self._poll_records(published, timeout, f"{starts} publishes of job {job}")

    def wait_for_log(self, job: int, text: str, count: int = 1, timeout: float = 30.0) -> int:
        """Until the job's log holds at least `count` lines containing `text`; returns how many it holds."""
        def logged(records, db):
            logs = records.read_job_details(db, [job])[job]["logs"]
            return (n := sum(text in line["message"] for line in logs)) >= count and n

        return self._poll_records(logged, timeout, f"{count} line(s) {text!r} in the log of job {job}")

    def wait_for_progress(self, job: int, processed: int, timeout: float = 30.0) -> int:
        """Until the job's stored progress counts at least `processed` images."""
        def counted(records, db):
            return (n := records.read_jobs(db, [job])[job]["progress"]["processed"]) >= processed and n

        return self._poll_records(counted, timeout, f"{processed} images of job {job} processed")

    def _poll_records(self, condition: Callable, timeout: float, what: str):
        """poll_until condition(records, db) is truthy, reading the target's database through its records."""
        import psycopg

        sources = self.sampler.sources
        with psycopg.connect(sources.database_url, autocommit=True) as db:
            return poll_until(lambda: condition(sources.records, db), timeout=timeout * slowdown(), interval=0.2,
                              what=what)

    def wait_for_redis_progress(self, job: int, processed: int, timeout: float = 30.0) -> int:
        """Until the job's Redis progress (what result tasks count before they save the job) reaches `processed`."""
        def counted():
            self.sampler.sample_now()
            redis = (self.sampler.latest.get(job) or {}).get("redis") or {}
            return (n := redis.get("processed", 0)) >= processed and n

        return poll_until(counted, timeout=timeout * slowdown(), interval=0.05, what=f"{processed} images of job "
                          f"{job} counted in Redis")

    def wait_for_acked(self, job: int, timeout: float = 30.0) -> None:
        """Until NATS holds no task of the job delivered and not yet acked (every result handed in is stored)."""
        def acked():
            self.sampler.sample_now()
            queue = (self.sampler.latest.get(job) or {}).get("queue") or {}
            return queue.get("consumer_exists") and queue.get("num_ack_pending") == 0

        poll_until(acked, timeout=timeout * slowdown(), interval=0.1, what=f"every delivered task of job {job} acked")

    def wait_for(self, job: int, statuses, timeout: float = 30.0, interval: float = 0.1) -> str:
        statuses = (statuses,) if isinstance(statuses, str) else tuple(statuses)
        return poll_until(lambda: (s := self.status(job)) in statuses and s, timeout=timeout, interval=interval,
                          what=f"job {job} in {statuses}")

    def watch(self, job: int, statuses, window: float, why: str = "") -> str | None:
        """An observation window that ends early: until the job is in `statuses`, at most `window` seconds
        (x slowdown). Returns its status then, None if the window passed (what the fixes-off run shows)."""
        window *= slowdown()
        self.note(f"watch job {job} for at most {window:.0f}s{f': {why}' if why else ''}")
        try:
            return self.wait_for(job, statuses, timeout=window, interval=0.25)
        except Timeout:
            return None

    # --- workers ------------------------------------------------------------------------------------------

    def reserve(self, job: int, batch: int = 16) -> list[dict]:
        return self.wire.reserve(job, batch)

    def post(self, job: int, tasks: list[dict]) -> dict | None:
        return self.wire.post(job, [result_for(task) for task in tasks])

    def work(self, job: int, tasks: int) -> int:
        """A healthy worker processes `tasks` tasks (fewer if the job runs out); returns how many."""
        done = 0
        while done < tasks and (batch := self.reserve(job, tasks - done)):
            self.post(job, batch)
            done += len(batch)
        return done

    def workers(self, kind: str = "healthy", job: int | None = None, count: int = 1, background: bool = False,
                **options):
        """Simulated workers on this scenario's jobs (or one job): until idle, or polling in the background
        until the run has settled."""
        from harness.workers import SimWorker

        options.setdefault("poll_interval", 0.1)
        jobs = [job] if job is not None else self.jobs
        crew = [SimWorker(self.target.api_url, self.target.token, kind=kind, job_ids=jobs, history=self.history,
                          name=f"{kind}-{len(self.background)}-{i}", until_idle=not background,
                          seed=self.random.randrange(2**32), **options) for i in range(count)]
        self.note(f"{count} {kind} worker(s) {'start polling' if background else 'at work'}")
        if background:
            self.background.append(BackgroundWorkers(crew))
            return self.background[-1]

        async def everyone():
            return await asyncio.gather(*(worker.run() for worker in crew))

        return asyncio.run(everyone())

    def stop_workers(self) -> None:
        for crew in self.background:
            crew.stop()
        self.background.clear()

    # --- the nemesis --------------------------------------------------------------------------------------

    def fault(self, verb: str, **args) -> dict:
        self.note(f"fault {verb} {args or ''}".strip(), record=False)  # the nemesis records it
        return self.nemesis.inject(verb, **args)

    def heal(self, verb: str) -> None:
        """Heal the latest active fault of that verb, leaving the others in force."""
        found = next(fault for name, fault in reversed(self.nemesis.active) if name == verb)
        self.nemesis.heal(verb, found)

    def heal_all(self) -> None:
        self.nemesis.heal_all()

    def sleep(self, seconds: float, why: str = "") -> None:
        """An observation window: nothing happens on purpose, the stack does (or does not) react."""
        if why:
            self.note(f"wait {seconds:.1f}s: {why}")
        time.sleep(seconds)

    def sample(self) -> None:
        if self.sampler is not None:
            self.sampler.sample_now()
