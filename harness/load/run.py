"""Run a Locust swarm of Antenna-like workers against a fresh target, then check the invariants.

    python -m harness.load.run --jobs 4 --images 200 --users 8 --duration 120 --crash-share 0.05
    python -m harness.load.run --target antenna:PATH --fixes off --jobs 2 --images 100 --users 4 --duration 60
    python -m harness.load.run --workers 2 --users 8      # Locust distributed: a master and 2 workers on loopback

Starts the target (`--target`: the sandbox or `antenna:PATH`, default CHAOS_TARGET, else the sandbox; fixes on
unless `--fixes off`; short ack_wait, max_deliver 3), creates the jobs through the target's create path and
starts each with POST /jobs/{id}/run/, runs Locust headless on loopback until no incomplete job is left (or the
duration ends), waits for every job to be terminal, then reads the jobs through the target's records and checks:
all jobs terminal; no stream ever held more messages than its job has images; at most one stored result per
(job, attempt, image); progress counts each result once; every FAILURE has an ERROR log line; every image of a
failed job that has no result was really abandoned (each of its max_deliver deliveries reached a worker that
dropped it). What a target's database cannot tell is weakened or not judged, and the summary says which
(invariants.Judgeable). Writes Locust's CSV stats and summary.json (with users, tasks/s, requests and failures
per Locust process: harness/load/report.py); exits 1 on a violation.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from harness.chaos import LocalTarget, Nemesis
from harness.chaos.wire import Wire
from harness.client import FINAL
from harness.history import History
from harness.load.invariants import Judgeable, Report, StreamSampler, account_for_dead_images, check
from harness.load.report import worker_rows, worker_table
from harness.load.swarm import run_swarm
from harness.settings import RunSettings
from harness.targets import Target, TargetSpec

PIPELINE = "moth-detector"  # the pipeline every target registers for the simulated workers
# Where the host's result tasks wait for a Celery worker: (Redis database, list), on the target's Redis server.
RESULT_QUEUE = {"sandbox": (None, "celery"), "antenna": (2, "ml_results")}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m harness.load.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--target", type=parse_target, default=None, metavar="sandbox|antenna:PATH",
                   help="the system under test (default: CHAOS_TARGET, else the sandbox)")
    p.add_argument("--fixes", choices=("on", "off"), default="on",
                   help="the fixes on (default) or off; on Antenna, off is the checkout as it is")
    p.add_argument("--jobs", type=int, default=4, help="jobs created and started before the swarm")
    p.add_argument("--images", type=int, default=200, help="images per job")
    p.add_argument("--users", type=int, default=8, help="simulated workers (Locust users)")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="run Locust distributed: one master and N worker processes on loopback, the users spread "
                        "over them (default 0: one process)")
    p.add_argument("--spawn-rate", type=float, default=8.0)
    p.add_argument("--duration", type=int, default=120, help="hard limit of the swarm, seconds")
    p.add_argument("--crash-share", type=float, default=0.05, help="share of batches dropped after reserving")
    p.add_argument("--error-share", type=float, default=0.05, help="share of batches answered with errors")
    p.add_argument("--ack-wait", type=float, default=2.0)
    p.add_argument("--max-deliver", type=int, default=3)
    p.add_argument("--sweep-interval", type=float, default=2.0)
    p.add_argument("--setting", dest="settings", action="append", default=[], type=parse_setting,
                   metavar="NAME=VALUE", help="any other CHAOS_* setting of the target, repeatable, e.g. "
                   "STALLED_MINUTES=1 (Antenna's idle rule, 0.1 by default)")
    p.add_argument("--web-workers", type=int, default=3)
    p.add_argument("--terminal-timeout", type=float, default=60.0,
                   help="seconds to wait after the swarm for every job to be terminal")
    p.add_argument("--out", type=Path, default=None, help="report directory (default reports/load-<time>)")
    p.add_argument("--fault", dest="faults", action="append", default=[], type=parse_fault, metavar="VERB@S[:ARG]",
                   help="fire a chaos verb S seconds into the swarm, e.g. nats-restart@5, nats-restart@5:wipe, "
                        "nats-pause@3:2 (2 s), redis-restart@8, revoke@4 (job faults act on the first job); "
                        "repeatable (`chaos fault list` shows the verbs)")
    args = p.parse_args(argv)
    if args.workers < 0:
        p.error("--workers must be 0 (one process) or more")
    if args.target is None:
        try:
            args.target = TargetSpec.parse(None)
        except ValueError as exc:
            p.error(f"CHAOS_TARGET: {exc}")
    return args


def parse_setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE")
    return name.strip(), value.strip()


def parse_target(text: str) -> TargetSpec:
    try:
        return TargetSpec.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


@dataclass(frozen=True)
class PlannedFault:
    verb: str
    at: float
    arg: str | None = None

    def __str__(self) -> str:
        return f"{self.verb}@{self.at:g}" + (f":{self.arg}" if self.arg else "")

    def args(self, job_ids: list[int]) -> dict:
        from harness.chaos import FAULTS

        fault = FAULTS[self.verb]
        value = job_ids[0] if fault.positional == "job" else self.arg or 1
        return {**fault.positional_args(value), **({"wipe": True} if self.arg == "wipe" else {})}


def parse_fault(text: str) -> PlannedFault:
    from harness.chaos import FAULTS

    verb, _, rest = text.partition("@")
    at, _, arg = rest.partition(":")
    if verb not in FAULTS:
        raise argparse.ArgumentTypeError(f"unknown fault {verb!r}; known: {', '.join(FAULTS)}")
    try:
        return PlannedFault(verb, float(at or 0), arg or None)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: expected VERB@SECONDS[:ARG]") from exc


def fire_faults(nemesis, planned: list[PlannedFault], job_ids: list[int], stop: threading.Event) -> None:
    """Inject each planned fault at its offset from now (a schedule, not a synchronisation)."""
    began = time.monotonic()
    for fault in sorted(planned, key=lambda f: f.at):
        if stop.wait(max(0.0, began + fault.at - time.monotonic())):
            return
        try:
            nemesis.inject(fault.verb, **fault.args(job_ids))
        except Exception as exc:  # recorded on the history by the nemesis; the swarm goes on
            print(f"fault {fault.verb} failed: {exc!r}", file=sys.stderr)


def stack_settings(args: argparse.Namespace) -> RunSettings:
    return RunSettings.of(dict(args.settings), fixes=args.fixes == "on", ack_wait=args.ack_wait,
                          max_deliver=args.max_deliver, sweep_interval=args.sweep_interval)


def result_backlog(target: Target):
    """A callable answering how many result tasks wait for the host's Celery worker."""
    import redis

    db, queue = RESULT_QUEUE[target.kind]
    url = target.redis.url if db is None else f"{target.redis.url.rsplit('/', 1)[0]}/{db}"
    client = redis.Redis.from_url(url, socket_timeout=2.0)
    return lambda: client.llen(queue)


def create_jobs(wire: Wire, count: int, images: int) -> list[int]:
    """Create each job through the target's create path, then start it with POST /jobs/{id}/run/."""
    job_ids = [wire.create(images, PIPELINE) for _ in range(count)]
    for job_id in job_ids:
        status = wire.start(job_id)
        if status is None or status >= 300:
            raise RuntimeError(f"starting job {job_id} answered {status}")
    return job_ids


def job_status(http: httpx.Client, job_id: int) -> str | None:
    """GET /jobs/{id}/'s status; None when the API did not answer (e.g. under a web fault)."""
    try:
        response = http.get(f"/jobs/{job_id}/")
    except httpx.HTTPError:
        return None
    return response.json().get("status") if response.status_code == 200 else None


def wait_statuses(http: httpx.Client, job_ids: list[int], wanted, timeout: float) -> dict[int, str | None]:
    """Poll GET /jobs/{id}/ until every job's status is in `wanted` or the timeout ends; the last statuses."""
    deadline, statuses = time.monotonic() + timeout, {}
    while True:
        statuses = {job_id: job_status(http, job_id) for job_id in job_ids}
        if all(s in wanted for s in statuses.values()) or time.monotonic() > deadline:
            return statuses
        time.sleep(0.5)


def run(args: argparse.Namespace) -> tuple[Report, dict]:
    started = datetime.now(UTC)
    out = (args.out or Path("reports") / f"load-{started:%Y%m%dT%H%M%SZ}").resolve()  # Locust processes run elsewhere
    out.mkdir(parents=True, exist_ok=True)
    judgeable = Judgeable.of(args.target.kind)
    stack = args.target.build(stack_settings(args), web_workers=args.web_workers).start()
    try:
        sampler = StreamSampler(stack.nats.monitor_url, result_backlog(stack))
        sampler.start()
        history = History()
        with Wire(stack.api_url, stack.token, history, create_path=stack.create_path, timeout=60.0) as wire:
            job_ids = create_jobs(wire, args.jobs, args.images)
            wait_statuses(wire.http, job_ids, ("STARTED", *FINAL), 60)
            nemesis = Nemesis(LocalTarget(stack, history))
            stop = threading.Event()
            chaos = threading.Thread(target=fire_faults, args=(nemesis, args.faults, job_ids, stop), daemon=True)
            began = time.monotonic()
            chaos.start()
            try:
                locust_exit = run_swarm(stack.api_url, stack.token, args, out)
            finally:
                stop.set()
                chaos.join()
                heal_errors = nemesis.heal_all()
                revived = [name for name, service in stack.services().items() if not service.is_running]
                for name in revived:  # died by itself under a fault (a supervisor would restart it)
                    stack.services()[name].start()
            swarm_seconds = time.monotonic() - began
            statuses = wait_statuses(wire.http, job_ids, FINAL, args.terminal_timeout)
            settled_seconds = time.monotonic() - began
        sampler.stop()
        database = stack.settings["CHAOS_DATABASE_URL"]
        report = check(stack.records, database, job_ids, sampler.max_messages, judgeable)
        batches = json.loads((out / "batches.json").read_text()) if (out / "batches.json").exists() else {}
        handed, crashed = batches.pop("handed", {}), batches.pop("crashed", {})
        requests, failures = batches.pop("requests", {}), batches.pop("failures", {})
        answered_between = batches.pop("answered_between", [])
        workers = batches.pop("workers", [])
        dead: dict | None = None
        if judgeable.image_ledger:
            dead, violations = account_for_dead_images(database, report.jobs, handed, crashed, args.max_deliver,
                                                       faults=bool(args.faults))
            report.violations += violations
        report.violations += [f"could not heal {error}" for error in heal_errors]
        if args.workers and len(workers) != args.workers:  # the dead-image accounting lacks their deliveries
            report.violations.append(f"only {len(workers)} of {args.workers} Locust workers reported their counts")
    finally:
        stack.stop()
    answered = batches.get("success_tasks", 0) + batches.get("error_tasks", 0)
    answering = answered_between[1] - answered_between[0] if len(answered_between) == 2 else 0.0
    processed = sum(job.processed for job in report.jobs)
    summary = {"started_at": started.isoformat(timespec="seconds"), "target": str(args.target),
               "fixes": args.fixes, "args": _jsonable(vars(args)),
               "swarm_seconds": round(swarm_seconds, 2), "settled_seconds": round(settled_seconds, 2),
               "answering_seconds": round(answering, 2),
               "answered_tasks_per_s": round(answered / answering, 1) if answering else 0.0,
               "processed_per_s": round(processed / settled_seconds, 1) if settled_seconds else 0.0,
               "locust_exit_code": locust_exit, "locust_workers": args.workers,
               "workers": worker_rows(workers, answering), "requests": requests, "failures": failures,
               "statuses": statuses, "batches": batches,
               "faults": [asdict(op) for op in history if op.process == "nemesis"], "revived": revived,
               "images_without_result": dead, "stream_samples": sampler.samples,
               "max_celery_queue": sampler.max_celery_queue,
               "jobs": [asdict(job) for job in report.jobs], "max_stream_messages": report.max_stream_messages,
               "duplicate_results": report.duplicate_results, "not_judged": judgeable.not_judged(),
               "violations": report.violations, "ok": report.ok, "out": str(out)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return report, summary


def _jsonable(values: dict) -> dict:
    return json.loads(json.dumps(values, default=str))


def print_summary(report: Report, summary: dict) -> None:
    print(f"target {summary['target']}, fixes {summary['fixes']}")
    print(f"{'job':>5} {'status':<8} {'images':>6} {'processed':>9} {'failed':>6} {'results':>7} "
          f"{'max msgs':>8} {'errors':>6}")
    for job in report.jobs:
        most = report.max_stream_messages.get(f"job_{job.id}", 0)
        print(f"{job.id:>5} {job.status:<8} {job.images:>6} {job.processed:>9} {job.failed:>6} "
              f"{job.distinct_results:>7} {most:>8} {job.error_logs:>6}")
        for reason in job.reasons[:10]:
            print(f"      {reason[:300]}")
        if len(job.reasons) > 10:
            print(f"      … and {len(job.reasons) - 10} more ERROR lines")
        if job.status != "SUCCESS":
            print("      last log lines:" + "".join(f"\n        {line[:300]}" for line in job.last_logs))
    if summary["images_without_result"] is not None:
        print(f"images of failed jobs without a result: {summary['images_without_result']}")
    ended = "every job terminal" if all(s in FINAL for s in summary["statuses"].values()) else "not all terminal"
    print(f"swarm {summary['swarm_seconds']} s, {sum(summary['requests'].values())} requests, "
          f"{sum(summary['failures'].values())} failed; tasks answered at {summary['answered_tasks_per_s']}/s "
          f"(first to last result POST, {summary['answering_seconds']} s); {ended} {summary['settled_seconds']} s "
          f"after the swarm began: {summary['processed_per_s']} images processed/s")
    if summary["workers"]:
        print(worker_table(summary["workers"]))
    for failure, times in sorted(summary["failures"].items()):
        print(f"  {times} x {failure[:200]}")
    print(f"batches {summary['batches']}, {summary['stream_samples']} samples, longest Celery queue "
          f"{summary['max_celery_queue']}; reports in {summary['out']}")
    for invariant, why in summary["not_judged"].items():
        print(f"on this target, {invariant!r} is {why}")
    if summary["faults"]:
        fired = [op["value"]["fault"] for op in summary["faults"] if op["f"] == "inject" and op["type"] == "ok"]
        print(f"faults fired: {', '.join(fired) or 'none'}; died and restarted: {summary['revived'] or 'nothing'}")
    print("invariants hold" if report.ok else "VIOLATIONS:\n  " + "\n  ".join(report.violations))


def main(argv: list[str] | None = None) -> int:
    report, summary = run(parse_args(argv))
    print_summary(report, summary)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
