"""Run a Locust swarm of Antenna-like workers against a fresh stack, then check the invariants.

    python -m harness.load.run --jobs 4 --images 200 --users 8 --duration 120 --crash-share 0.05

Starts a Stack (fixes on, short ack_wait, max_deliver 3), creates and starts the jobs through the API,
runs Locust headless on loopback until no incomplete job is left (or the duration ends), waits for every
job to be terminal, then checks: all jobs terminal; no stream ever held more messages than its job has
images; at most one result row per (job, attempt, image); progress counts each result once; every
FAILURE has an ERROR log line; every image of a failed job that has no result was really abandoned
(each of its max_deliver deliveries reached a worker that dropped it). Writes Locust's CSV stats and summary.json; exits 1 on a violation.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from harness.chaos import LocalTarget, Nemesis
from harness.client import FINAL, SandboxClient
from harness.history import History
from harness.infra import Stack
from harness.load.invariants import Report, StreamSampler, account_for_dead_images, check
from harness.settings import RunSettings

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m harness.load.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=4, help="jobs created and started before the swarm")
    p.add_argument("--images", type=int, default=200, help="images per job")
    p.add_argument("--users", type=int, default=8, help="simulated workers (Locust users)")
    p.add_argument("--spawn-rate", type=float, default=8.0)
    p.add_argument("--duration", type=int, default=120, help="hard limit of the swarm, seconds")
    p.add_argument("--crash-share", type=float, default=0.05, help="share of batches dropped after reserving")
    p.add_argument("--error-share", type=float, default=0.05, help="share of batches answered with errors")
    p.add_argument("--ack-wait", type=float, default=2.0)
    p.add_argument("--max-deliver", type=int, default=3)
    p.add_argument("--sweep-interval", type=float, default=2.0)
    p.add_argument("--web-workers", type=int, default=3)
    p.add_argument("--terminal-timeout", type=float, default=60.0,
                   help="seconds to wait after the swarm for every job to be terminal")
    p.add_argument("--out", type=Path, default=None, help="report directory (default reports/load-<time>)")
    p.add_argument("--fault", dest="faults", action="append", default=[], type=parse_fault, metavar="VERB@S[:ARG]",
                   help="fire a chaos verb S seconds into the swarm, e.g. nats-restart@5, nats-restart@5:wipe, "
                        "nats-pause@3:2 (2 s), redis-restart@8, revoke@4 (job faults act on the first job); "
                        "repeatable (`chaos fault list` shows the verbs)")
    return p.parse_args(argv)


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
    return RunSettings.of(ack_wait=args.ack_wait, max_deliver=args.max_deliver, sweep_interval=args.sweep_interval)


def run_locust(stack: Stack, args: argparse.Namespace, out: Path) -> int:
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", stack.api_url,
               "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{args.duration}s",
               "--csv", str(out / "locust"), "--only-summary", "--stop-timeout", "5",
               "--crash-share", str(args.crash_share), "--error-share", str(args.error_share),
               "--poll-interval", "0.2", "--idle-stop", str(max(3.0, 2 * args.sweep_interval)),
               "--counts-file", str(out / "batches.json")]
    env = {**os.environ, "CHAOS_TOKEN": stack.token}
    with open(out / "locust.log", "wb") as log:
        # Locust exits 1 when a request failed; a 503 during the run is allowed, the invariants decide
        return subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                              timeout=args.duration + 60).returncode


def wait_terminal(client: SandboxClient, job_ids: list[int], timeout: float) -> dict[int, str]:
    deadline, statuses = time.monotonic() + timeout, {}
    while True:
        statuses = {job_id: client.job(job_id)["status"] for job_id in job_ids}
        if all(s in FINAL for s in statuses.values()) or time.monotonic() > deadline:
            return statuses
        time.sleep(0.5)


def run(args: argparse.Namespace) -> tuple[Report, dict]:
    started = datetime.now(UTC)
    out = args.out or Path("reports") / f"load-{started:%Y%m%dT%H%M%SZ}"
    out.mkdir(parents=True, exist_ok=True)
    stack = Stack(settings=stack_settings(args), web_workers=args.web_workers).start()
    try:
        sampler = StreamSampler(stack.nats.monitor_url, stack.redis.client())
        sampler.start()
        with SandboxClient(stack.api_url, stack.token) as client:
            job_ids = [client.create_job(images=args.images, start=True)["id"] for _ in range(args.jobs)]
            for job_id in job_ids:
                client.wait_for_status(job_id, ("STARTED", *FINAL), timeout=60)
            history = History()
            nemesis = Nemesis(LocalTarget(stack, history))
            stop = threading.Event()
            chaos = threading.Thread(target=fire_faults, args=(nemesis, args.faults, job_ids, stop), daemon=True)
            began = time.monotonic()
            chaos.start()
            try:
                locust_exit = run_locust(stack, args, out)
            finally:
                stop.set()
                chaos.join()
                heal_errors = nemesis.heal_all()
                revived = [name for name, service in stack.services().items() if not service.is_running]
                for name in revived:  # died by itself under a fault (a supervisor would restart it)
                    stack.services()[name].start()
            swarm_seconds = time.monotonic() - began
            statuses = wait_terminal(client, job_ids, args.terminal_timeout)
        sampler.stop()
        database = stack.settings["CHAOS_DATABASE_URL"]
        report = check(database, job_ids, sampler.max_messages)
        batches = json.loads((out / "batches.json").read_text()) if (out / "batches.json").exists() else {}
        handed, crashed = batches.pop("handed", {}), batches.pop("crashed", {})
        dead, violations = account_for_dead_images(database, report.jobs, handed, crashed, args.max_deliver,
                                                   faults=bool(args.faults))
        report.violations += violations + [f"could not heal {error}" for error in heal_errors]
    finally:
        stack.stop()
    summary = {"started_at": started.isoformat(timespec="seconds"), "args": _jsonable(vars(args)),
               "swarm_seconds": round(swarm_seconds, 2), "locust_exit_code": locust_exit,
               "statuses": statuses, "batches": batches,
               "faults": [asdict(op) for op in history if op.process == "nemesis"], "revived": revived,
               "images_without_result": dead, "stream_samples": sampler.samples,
               "max_celery_queue": sampler.max_celery_queue,
               "jobs": [asdict(job) for job in report.jobs], "max_stream_messages": report.max_stream_messages,
               "duplicate_results": report.duplicate_results, "violations": report.violations, "ok": report.ok,
               "out": str(out)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return report, summary


def _jsonable(values: dict) -> dict:
    return json.loads(json.dumps(values, default=str))


def print_summary(report: Report, summary: dict) -> None:
    print(f"{'job':>5} {'status':<8} {'images':>6} {'processed':>9} {'failed':>6} {'results':>7} "
          f"{'max msgs':>8} {'errors':>6}")
    for job in report.jobs:
        most = report.max_stream_messages.get(f"job_{job.id}", 0)
        print(f"{job.id:>5} {job.status:<8} {job.images:>6} {job.processed:>9} {job.failed:>6} "
              f"{job.distinct_results:>7} {most:>8} {job.error_logs:>6}")
        for reason in job.reasons:
            print(f"      {reason[:300]}")
    print(f"images of failed jobs without a result: {summary['images_without_result']}")
    print(f"swarm {summary['swarm_seconds']} s, batches {summary['batches']}, "
          f"{summary['stream_samples']} samples, longest Celery queue {summary['max_celery_queue']}; "
          f"reports in {summary['out']}")
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
