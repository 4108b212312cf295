"""Run one scenario against a stack: observe, heal everything, settle, snapshot, judge, report.

    run(scenario, stack, fixes="off", seed=0, report_dir="reports/s01-off") -> RunReport
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.chaos import LocalTarget, Nemesis
from harness.checks import CHECKS, Verdict, applicable, compose, judge
from harness.checks.ops import TERMINAL, nats_outages
from harness.checks.sampler import Sampler
from harness.checks.snapshot import Sources, collect
from harness.history import History
from harness.settings import RunSettings
from harness.targets import TargetSpec
from harness.waiting import slowdown
from scenarios.base import Ctx, Scenario
from scenarios.fuzz import probe_unauthorized

NATS_CALL_TIMEOUT = 5.0  # how long the fixes wait for one NATS call (fixes.jetstream.bridge)


def default_bound(settings: dict) -> float:
    """Time after the last heal for a job to end: exhaust every delivery, be seen by enough sweeps."""
    return round(RunSettings.of(settings).settle_bound() * slowdown(), 1)


@dataclass
class RunReport:
    scenario: Scenario
    fixes: str
    seed: int
    settings: dict
    started: float
    seconds: float
    verdicts: list[Verdict]
    history: History
    snapshot: dict
    error: str | None = None
    report_dir: Path | None = None
    logs: dict[str, str] = field(default_factory=dict)  # the last lines of each server's log
    target: str = "sandbox"  # what ran: "sandbox" or "antenna:PATH"

    @property
    def composed(self) -> Verdict:
        return compose(self.verdicts)

    def verdict(self, name: str) -> Verdict | None:
        return next((v for v in self.verdicts if v.name == name), None)

    @property
    def incident_shown(self) -> bool:
        """Fixes off: every check the scenario names failed (the proof those checks can fail), and the
        scenario ran to its end (a crash shows nothing)."""
        return self.error is None and all((v := self.verdict(name)) is not None and v.ok is False
                                          for name in self.scenario.expect_off)

    @property
    def as_expected(self) -> bool:
        if self.error is not None:  # a crashed scenario is a failed run in both modes
            return False
        if self.fixes == "off" and not self.scenario.control:
            return self.incident_shown
        if self.fixes == "on" and self.scenario.known_gap:  # still uncured: the run is as expected while the gap shows
            return self.composed.ok is False
        return self.composed.ok is True

    @property
    def replay(self) -> str:
        where = "" if self.target == "sandbox" else f" --target {self.target}"
        return f"chaos run {self.scenario.name} --fixes {self.fixes} --seed {self.seed}{where}"

    def evidence(self) -> str:
        lines = [f"{self.scenario.name} fixes={self.fixes} seed={self.seed}: {self.composed.label} "
                 f"({self.seconds:.1f}s) — replay: {self.replay}"]
        if self.error:
            lines.append(f"scenario raised: {self.error.strip().splitlines()[-1]}")
        for v in self.verdicts:
            lines.append(f"  {v.label:7} {v.name} {v.counts}")
            lines.extend(f"          {sample}" for sample in v.samples[:5])
        if skipped := [name for name in CHECKS if self.verdict(name) is None]:
            lines.append(f"  not judged (the run did not exercise them): {', '.join(skipped)}")
        lines.append("  verb log: " + "; ".join(verb_log(self.history)))
        return "\n".join(lines)


def verb_log(history: History) -> list[str]:
    """The ordered steps a person could replay: client actions and faults (not the workers' polling)."""
    t0 = history.ops[0].time if history.ops else 0.0
    steps = []
    for op in history.ops:
        if op.process == "nemesis" and op.type == "invoke":
            args = {k: v for k, v in op.value.items() if k != "fault"}
            steps.append(f"+{op.time - t0:.1f}s {op.f} {op.value['fault']} {args or ''}".rstrip())
        elif op.process == "client" and op.type == "invoke" and op.f in ("create", "start", "cancel"):
            steps.append(f"+{op.time - t0:.1f}s {op.f} job {op.value.get('job') or ''}".rstrip())
        elif op.process == "scenario":
            steps.append(f"+{op.time - t0:.1f}s {op.value}")
    return steps


def run(scenario: Scenario, stack, fixes: str, seed: int = 0, report_dir: str | Path | None = None,
        on_note: Callable[[str], None] | None = None, bound: float | None = None,
        on_start: Callable[[Ctx], None] | None = None) -> RunReport:
    """on_note gets each step as text; on_start gets the run's Ctx (its sampler has live counts)."""
    if RunSettings.of(stack.settings).fixes != (fixes == "on"):
        raise ValueError(f"stack runs with fixes {stack.settings.get('CHAOS_FIXES')}, scenario asked {fixes}")
    note = on_note or (lambda text: None)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per worker call drowns the evidence
    history, jobs = History(), []
    sources = Sources.of(stack)
    target = LocalTarget(stack, history)
    nemesis = Nemesis(target)
    sampler = Sampler(sources, history, jobs).start()
    ctx = Ctx(target, nemesis, history, jobs, seed, fixes, sampler=sampler, on_note=note)
    if on_start:
        on_start(ctx)
    if bound is None:
        bound = (scenario.bound * slowdown() + RunSettings.of(stack.settings).replicated_span()
                 if scenario.bound is not None else default_bound(stack.settings))
    started, error, heal_errors = time.time(), None, []
    history.append("runner", "scenario", "invoke", {"name": scenario.name, "fixes": fixes, "seed": seed})
    try:
        scenario.run(ctx)
        history.append("runner", "scenario", "ok", {"name": scenario.name})
    except Exception:
        error = traceback.format_exc()
        history.append("runner", "scenario", "fail", {"name": scenario.name, "error": error.splitlines()[-1]})
    try:
        note("healing every fault")
        heal_errors = nemesis.heal_all()
        note(f"settling: every job must end within {bound:.0f}s")
        settle(history, sources, jobs, bound, sampler)
        outsider = getattr(stack, "outsider_token", None)  # a target that has none is probed without a token only
        probe_unauthorized(target.api_url, history, jobs[0] if jobs else None,
                           anonymous_reads=stack.anonymous_reads, other_project_token=outsider() if outsider else None)
    finally:
        ctx.stop_workers()
        sampler.stop()
    note("final snapshot and checks")
    snapshot = collect(sources, jobs)
    snapshot["services"] = {name: service.is_running and not service.paused
                            for name, service in stack.services().items()}
    verdicts = [*judge(history.ops, snapshot, applicable(history.ops)), ran(error, heal_errors)]
    report = RunReport(scenario, fixes, seed, dict(stack.settings), started, time.time() - started, verdicts,
                       history, snapshot, error, logs=server_logs(stack), target=describe(stack))
    revive(target, snapshot["services"], note)
    tidy(ctx)
    if report_dir is not None:
        from scenarios.report import write

        report.report_dir = write(report, Path(report_dir))
    return report


def describe(stack) -> str:
    checkout = getattr(stack, "checkout", None)
    return stack.kind if checkout is None else f"{stack.kind}:{checkout}"


def ran(error: str | None, heal_errors: list) -> Verdict:
    """The run itself: a scenario that raised failed (in both modes); a fault not healed leaves it unknown."""
    ok = False if error else None if heal_errors else True
    return Verdict(ok, "scenario_ran", {"raised": int(bool(error)), "heal_errors": len(heal_errors)},
                   [*([error] if error else []), *heal_errors])


def server_logs(stack, lines: int = 400) -> dict[str, str]:
    logs = {}
    for name, service in stack.services().items():
        try:
            logs[name] = service.logs(tail=lines)
        except OSError:
            continue
    return logs


def settle(history: History, sources: Sources, jobs: list[int], bound: float, sampler: Sampler) -> None:
    """Wait (at most `bound`) for every job to end, then (at most a few seconds) for their queues to go."""
    import psycopg

    history.append("runner", "settle", "invoke", {"bound": bound})
    began = time.monotonic()
    deadline = began + bound
    with psycopg.connect(sources.database_url, autocommit=True) as db:
        def open_jobs() -> int:
            rows = db.execute("select count(*) from jobs_job where id = any(%s) and status <> all(%s)",
                              (jobs, list(TERMINAL))).fetchone()
            return rows[0]

        while (left := open_jobs()) and time.monotonic() < deadline:
            time.sleep(0.25)
    cleanup_wait = 2 * RunSettings.of(sources.settings).sweep_interval + 1
    if nats_outages(history.ops):
        cleanup_wait += 2 * NATS_CALL_TIMEOUT  # a cleanup caught in a NATS call that timed out (a cluster electing
        # its leader) is deferred only when the call gives up, then retried by a sweep that may wait one out too
    cleanup_deadline = time.monotonic() + cleanup_wait
    while not left and time.monotonic() < cleanup_deadline:
        sampler.sample_now()
        queues = [sampler.latest.get(job, {}).get("queue") for job in jobs]
        if all(q is not None and not q["stream_exists"] and not q["consumer_exists"] for q in queues):
            break
        time.sleep(0.25)
    history.append("runner", "settle", "ok", {"open_jobs": left, "seconds": round(time.monotonic() - began, 2)})


def revive(target: LocalTarget, services: dict[str, bool], note: Callable[[str], None]) -> None:
    """Start again what died by itself, so the next run on a shared stack does not inherit it."""
    for name, running in services.items():
        if not running:
            note(f"{name} died during the run: starting it again")
            target.service(name, "start")


def tidy(ctx: Ctx) -> None:
    """Leave a shared stack quiet for the next scenario: cancel this run's jobs that never ended."""
    try:
        for job in ctx.jobs:
            if ctx.status(job) not in (*TERMINAL, None):
                ctx.wire.http.post(f"/jobs/{job}/cancel/")
    except Exception:  # the verdicts are in; a stack too broken to tidy is the next run's concern
        pass
    ctx.wire.close()


def run_fresh(scenario: Scenario, fixes: str, seed: int = 0, report_dir: str | Path | None = None,
              on_note: Callable[[str], None] | None = None, on_start: Callable[[Ctx], None] | None = None,
              target: TargetSpec | None = None) -> RunReport:
    """Start a target (default: CHAOS_TARGET, else the sandbox) with the scenario's settings, run it, stop it."""
    target = target or TargetSpec.parse()
    if target.kind not in scenario.targets:
        raise ValueError(f"{scenario.name} does not run on {target.kind}: {scenario.targets_why}")
    stack = target.build(scenario.stack_settings(fixes))
    if on_note:
        on_note(f"starting NATS, Redis, PostgreSQL, web, Celery worker and beat ({target})")
    stack.start()
    try:
        return run(scenario, stack, fixes, seed, report_dir, on_note, on_start=on_start)
    finally:
        stack.stop(graceful=False)
