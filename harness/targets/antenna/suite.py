"""Antenna's own tests for the job path, against real servers, with the fixes off and on.

    python -m harness.targets.antenna.suite --checkout PATH [--fixes off|on|both]

Runs Antenna's job-path suites — `ami/jobs/tests`, `ami/ml/orchestration/tests` and the job-path classes of
`ami/ml/tests.py` — the way Antenna's CI runs its tests (`python manage.py test` under `config.settings.local`,
docker-compose.ci.yml) but against the harness's servers: NATS 2.10.26 (from Antenna's virtualenv), Redis and
PostgreSQL 18. RabbitMQ is replaced by Redis as Celery's broker, as everywhere in the harness; CI starts no Celery
worker for its tests, and neither does this. CI's MinIO and processing service (`ml_backend`) are not here: the
post-migrate hook that builds a demo project from them is disconnected for the test database (as the harness's
bootstrap does), and the few tests whose fixtures need them fail on HEAD and with the fixes alike, saying so.

Fixes off runs the checkout as it is; fixes on runs the patched copy the fixes' Antenna PR makes
(harness/targets/antenna/checkout.py). Each leg gets fresh servers. The fixes-on leg passes only when every test
ends as it did with the fixes off — the same tests fail, every other one passes — bar the tests the PR itself
edits: a test of a module the PR changes may be gone (rewritten or dropped, listed as such) and a new one must
pass. The exit code says so. Nothing is written into the checkout (PYTHONDONTWRITEBYTECODE, a temp working
directory and MEDIA_ROOT; checked after the run) and nothing is left running (every server and the test process
are stopped in `with`/`finally` blocks).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.infra.base import RUN_ID, TMP_ROOT, tmp_prefix
from harness.infra.nats import NatsServer
from harness.infra.postgres import PostgresServer
from harness.infra.redis import RedisServer
from harness.targets.antenna.venv import antenna_venv

OVERLAY = Path(__file__).with_name("overlay")
DATABASE = "antenna"  # Django's test runner creates test_antenna beside it
SETTINGS = "chaos_antenna_test_settings"
LEG_TIMEOUT = 1800.0  # seconds for one `manage.py test` (migrations included); a hang ends there
PROGRESS_EVERY = 30.0  # seconds between progress lines while a leg runs

# ami/ml/tests.py mixes the job path with processing-service registration and API filters: only the classes that
# exercise what a job runs are taken — collect_images/save_results (TestPipeline, and the deployment counts
# save_results refreshes), the Redis job state (TestTaskStateManager) and the job's post-processing stages.
# TestPipelineWithProcessingService is left out: it needs CI's processing service (ml_backend), absent here.
ML_JOB_PATH = ("TestPipeline", "TestTaskStateManager", "TestPostProcessingTasks",
               "TestSaveResultsRefreshesDeploymentCounts")


@dataclass(frozen=True)
class Suite:
    name: str
    labels: tuple[str, ...]  # `manage.py test` labels

    def owns(self, test_id: str) -> bool:
        """`ami.jobs.tests.test_jobs.X.test_y`, a subtest `... (case=1)`, or `setUpClass (ami.ml.tests.TestPipeline)`."""
        return any(re.search(rf"(^|\(){re.escape(label)}([.)\s]|$)", test_id) for label in self.labels)


SUITES = (
    Suite("ami/jobs/tests", ("ami.jobs.tests",)),
    Suite("ami/ml/orchestration/tests", ("ami.ml.orchestration.tests",)),
    Suite("ami/ml/tests.py (job path)", tuple(f"ami.ml.tests.{name}" for name in ML_JOB_PATH)),
)

# outcome -> table column; an expected failure is the test passing, an unexpected success fails the run
COLUMN = {"passed": "passed", "expected-failure": "passed", "failed": "failed", "unexpected-success": "failed",
          "error": "errors", "skipped": "skipped"}
COLUMNS = ("passed", "failed", "errors", "skipped")
ABSENT = "absent"
# Failures whose cause is a service Antenna's CI has and this run does not: said beside the test.
MISSING_SERVICES = ((re.compile(r"NoCredentialsError|Could not connect to the endpoint URL|'minio'"),
                     "needs CI's MinIO, which is not here"),
                    (re.compile(r"ml_backend"), "needs CI's processing service (ml_backend), which is not here"))


def _why(reason: str) -> str:
    for pattern, note in MISSING_SERVICES:
        if pattern.search(reason):
            return f"{reason}  [{note}]"
    return reason


# --- results -----------------------------------------------------------------------------------------------

@dataclass
class Leg:
    mode: str  # "off" | "on"
    code: Path | None = None  # the tree the tests ran from
    outcomes: dict[str, str] = field(default_factory=dict)  # test id -> outcome
    reasons: dict[str, str] = field(default_factory=dict)  # test id -> one line (failures, errors, skips)
    seconds: dict[str, float] = field(default_factory=dict)  # test id -> its own time
    wall: float = 0.0  # the whole leg: servers, migrations, tests
    returncode: int | None = None
    skipped: str | None = None  # why the leg did not run
    pr_test_modules: tuple[str, ...] = ()  # test modules the fixes' PR edits (fixes on), e.g. ami.jobs.tests.test_jobs
    problem: str | None = None  # why the leg's results cannot be trusted (crash, hang, timeout)
    log_tail: str = ""

    @property
    def ran(self) -> bool:
        return self.skipped is None and self.problem is None

    def counts(self, suite: Suite | None = None) -> dict[str, int]:
        counted = Counter(COLUMN[outcome] for test, outcome in self.outcomes.items() if suite is None or suite.owns(test))
        return {column: counted.get(column, 0) for column in COLUMNS}

    def suite_seconds(self, suite: Suite) -> float:
        return sum(seconds for test, seconds in self.seconds.items() if suite.owns(test))

    def failing(self) -> list[str]:
        return sorted(test for test, outcome in self.outcomes.items() if COLUMN[outcome] in ("failed", "errors"))


@dataclass
class SuiteReport:
    checkout: Path
    legs: list[Leg]
    wall: float = 0.0
    wrote_into_checkout: list[str] = field(default_factory=list)

    def leg(self, mode: str) -> Leg | None:
        return next((leg for leg in self.legs if leg.mode == mode), None)

    def differences(self) -> list[Difference]:
        """Tests that end differently with the fixes on than off (both legs must have run). A test may only be
        missing with the fixes on when the PR edits its module (a test the PR rewrites or drops), and may only be
        new when it does not fail (a test the PR adds); every other difference fails the comparison."""
        off, on = self.leg("off"), self.leg("on")
        if off is None or on is None or not off.ran or not on.ran:
            return []
        found = []
        for test in sorted(set(off.outcomes) | set(on.outcomes)):
            before, after = off.outcomes.get(test, ABSENT), on.outcomes.get(test, ABSENT)
            if before == after:
                continue
            if after == ABSENT:
                allowed = COLUMN[before] in ("passed", "skipped") and in_modules(test, on.pr_test_modules)
            elif before == ABSENT:
                allowed = COLUMN[after] in ("passed", "skipped")
            else:
                allowed = False
            found.append(Difference(test, before, after, on.reasons.get(test) or off.reasons.get(test, ""), allowed))
        return found

    @property
    def ok(self) -> bool:
        if self.wrote_into_checkout:
            return False
        if any(leg.problem for leg in self.legs):
            return False
        return all(difference.allowed for difference in self.differences())


@dataclass(frozen=True)
class Difference:
    test: str
    off: str  # outcome with the fixes off, or ABSENT
    on: str
    reason: str
    allowed: bool  # a test the PR itself adds, rewrites or drops

    def __str__(self) -> str:
        if self.allowed:
            return f"{self.test}: {'added by' if self.off == ABSENT else 'rewritten or dropped by'} the PR"
        return (f"{self.test}: {self.off} with the fixes off, {self.on} with them on"
                + (f" — {self.reason}" if self.reason else ""))


def in_modules(test_id: str, modules: Iterable[str]) -> bool:
    """Whether a test (`a.b.C.test_x`, `a.b.C.test_x (case=1)`, `setUpClass (a.b.C)`) lives in one of modules."""
    inner = re.search(r"\((\S+)\)$", test_id)
    name = inner.group(1) if test_id.split(" ", 1)[0] in ("setUpClass", "tearDownClass", "setUpModule",
                                                          "tearDownModule") and inner else test_id.split(" ", 1)[0]
    return any(name == module or name.startswith(f"{module}.") for module in modules)


# --- one leg -----------------------------------------------------------------------------------------------

def _code_for(checkout: Path, leg: Leg, log: Callable[[str], None]) -> list[Path]:
    """Sets leg.code (or leg.skipped) and leg.pr_test_modules; returns extra PYTHONPATH entries."""
    if leg.mode == "off":
        leg.code = checkout
        return []
    try:
        from harness.targets.antenna import checkout as fixes_pr
    except ImportError as exc:
        leg.skipped = f"the fixes' Antenna PR is not part of this version ({exc})"
        return []
    if not fixes_pr.PATCH.exists():
        leg.skipped = f"the fixes' Antenna PR is not part of this version (no {fixes_pr.PATCH.name})"
        return []
    log("preparing the patched copy of the checkout (the fixes' PR applied)")
    leg.code = fixes_pr.prepare(checkout, fixes=True)
    leg.pr_test_modules = pr_test_modules(fixes_pr.PATCH.read_text())
    return [fixes_pr.fixes_source()]


def pr_test_modules(patch: str) -> tuple[str, ...]:
    """Dotted names of the test modules a patch edits or adds (`+++ b/ami/jobs/tests/test_jobs.py`)."""
    paths = re.findall(r"^\+\+\+ b/(\S+\.py)\s*$", patch, flags=re.MULTILINE)
    return tuple(sorted({path.removesuffix(".py").replace("/", ".") for path in paths
                         if re.search(r"(^|/)(tests?\.py|tests/|test_[^/]*\.py)", path)}))


def _environment(code: Path, extra_path: Sequence[Path], *, nats: NatsServer, redis: RedisServer,
                 postgres: PostgresServer, results: Path, media: Path) -> dict[str, str]:
    """What Antenna's CI passes its test container (.envs/.ci/.django), pointed at these servers."""
    inherited = {key: value for key, value in os.environ.items()
                 if not key.startswith(("DJANGO_", "CELERY_", "MINIO_", "NATS_", "ANTENNA_", "CHAOS_"))
                 and key not in ("DATABASE_URL", "REDIS_URL", "PYTHONPATH", "VIRTUAL_ENV", "USE_DOCKER")}
    redis_base = redis.url.rsplit("/", 1)[0]
    return {**inherited,
            "DJANGO_SETTINGS_MODULE": SETTINGS, "USE_DOCKER": "no",
            "PYTHONPATH": os.pathsep.join(map(str, (OVERLAY, code, *extra_path))),
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
            "DATABASE_URL": postgres.url_for(DATABASE), "REDIS_URL": f"{redis_base}/0",
            "CELERY_BROKER_URL": f"{redis_base}/2", "NATS_URL": nats.url,
            "CHAOS_TEST_RESULTS": str(results), "CHAOS_MEDIA_ROOT": str(media),
            # tagged like the harness's servers, so reap_orphans() finds the test process if this one dies
            "CHAOS_RUN_ID": RUN_ID, "CHAOS_OWNER_PID": str(os.getpid())}


def _read_results(path: Path, leg: Leg) -> str | None:
    """Fill leg from the runner's JSON lines; returns the test that started and never finished, if any."""
    running = None
    if not path.exists():
        return None
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:  # a line cut off by a kill
            continue
        if entry["event"] == "start":
            running = entry["id"]
            continue
        test = entry["id"]
        leg.outcomes[test] = entry["outcome"]
        leg.seconds[test] = leg.seconds.get(test, 0.0) + entry.get("seconds", 0.0)
        if entry.get("reason"):
            leg.reasons[test] = entry["reason"]
        if test == running or test.startswith(f"{running} "):
            running = None
    return running


def _stop_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            return
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever the test process left behind in its group
    except ProcessLookupError:
        pass
    proc.wait()


def run_leg(checkout: Path, mode: str, *, timeout: float = LEG_TIMEOUT, suites: Sequence[Suite] = SUITES,
            logs: Path | None = None, log: Callable[[str], None] = print) -> Leg:
    began = time.perf_counter()
    leg = Leg(mode)
    extra_path = _code_for(checkout, leg, log)
    if leg.skipped:
        return leg
    code = leg.code
    python = str(antenna_venv(code, log=log) / "bin" / "python")
    nats_binary = str(Path(python).with_name("nats-server"))
    work = Path(tempfile.mkdtemp(prefix=f"{tmp_prefix()}antenna-tests-{mode}-", dir=TMP_ROOT))
    results, output = work / "results.jsonl", work / "manage-test.log"
    try:
        with NatsServer(binary=nats_binary) as nats, RedisServer() as redis, PostgresServer() as postgres:
            postgres.create_database(DATABASE)
            env = _environment(code, extra_path, nats=nats, redis=redis, postgres=postgres,
                               results=results, media=work / "media")
            labels = [label for suite in suites for label in suite.labels]
            command = [python, str(code / "manage.py"), "test", *labels, "--noinput", "--verbosity", "2"]
            log(f"[fixes {mode}] manage.py test {' '.join(labels)}")
            with open(output, "wb") as out:
                proc = subprocess.Popen(command, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            try:
                leg.returncode = _wait(proc, timeout, results, mode, log)
            finally:
                _stop_group(proc)
        running = _read_results(results, leg)
        leg.log_tail = _tail(output, 60)
        if leg.returncode is None:
            leg.problem = f"timed out after {timeout:.0f} s" + (f" in {running}" if running else "")
        elif running:
            leg.problem = f"the test process ended ({leg.returncode}) inside {running}"
        elif not leg.outcomes:
            leg.problem = f"no test ran: `manage.py test` exited {leg.returncode} (log below)"
        elif leg.returncode not in (0, 1):
            leg.problem = f"`manage.py test` exited {leg.returncode}"
        if logs is not None:
            logs.mkdir(parents=True, exist_ok=True)
            for path in (results, output):
                if path.exists():
                    shutil.copyfile(path, logs / f"fixes-{mode}-{path.name}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    leg.wall = time.perf_counter() - began
    return leg


def _wait(proc: subprocess.Popen, timeout: float, results: Path, mode: str, log: Callable[[str], None]) -> int | None:
    """The exit code, or None on timeout; a progress line every PROGRESS_EVERY seconds."""
    deadline, next_note = time.monotonic() + timeout, time.monotonic() + PROGRESS_EVERY
    while proc.poll() is None:
        if time.monotonic() > deadline:
            return None
        if time.monotonic() > next_note:
            next_note += PROGRESS_EVERY
            partial = Leg(mode)
            running = _read_results(results, partial)
            counts = partial.counts()
            log(f"[fixes {mode}] {sum(counts.values())} tests done ({counts['failed']} failed, "
                f"{counts['errors']} errors)" + (f"; running {running}" if running else "; migrating"
                                                 if not partial.outcomes else ""))
        time.sleep(0.5)
    return proc.returncode


def _tail(path: Path, lines: int) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --- the checkout stays as it was --------------------------------------------------------------------------

def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """relative path -> (size, mtime) of every file under root (bar .git and the frontend)."""
    state = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in (".git", "node_modules", "ui")]
        for name in files:
            path = Path(folder, name)
            try:
                stat = path.lstat()
            except OSError:
                continue
            state[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return state


def changed(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    return sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))


# --- the whole run -----------------------------------------------------------------------------------------

def run(checkout: str | Path, modes: Iterable[str] = ("off", "on"), *, timeout: float = LEG_TIMEOUT,
        suites: Sequence[Suite] = SUITES, logs: Path | None = None, log: Callable[[str], None] = print) -> SuiteReport:
    checkout = Path(checkout).expanduser().resolve()
    if not (checkout / "manage.py").is_file() or not (checkout / "ami").is_dir():
        raise FileNotFoundError(f"{checkout} is not an Antenna backend checkout: no manage.py and ami/")
    began = time.perf_counter()
    before = tree_state(checkout)
    report = SuiteReport(checkout, [run_leg(checkout, mode, timeout=timeout, suites=suites, logs=logs, log=log)
                               for mode in modes])
    report.wrote_into_checkout = changed(before, tree_state(checkout))
    report.wall = time.perf_counter() - began
    return report


def render(report: SuiteReport, suites: Sequence[Suite] = SUITES) -> str:
    out = [f"Antenna's own job-path tests ({report.checkout})", ""]
    header = f"{'suite':<30} {'fixes':<5} {'passed':>6} {'failed':>6} {'errors':>6} {'skipped':>7} {'time':>7}"
    out += [header, "-" * len(header)]
    for leg in report.legs:
        if leg.skipped:
            out.append(f"{'(all)':<30} {leg.mode:<5} skipped: {leg.skipped}")
            continue
        for suite in suites:
            counts = leg.counts(suite)
            out.append(f"{suite.name:<30} {leg.mode:<5} " + " ".join(
                f"{counts[c]:>{max(6, len(c))}}" for c in COLUMNS) + f" {leg.suite_seconds(suite):>6.0f}s")
        counts = leg.counts()
        out.append(f"{'total':<30} {leg.mode:<5} " + " ".join(
            f"{counts[c]:>{max(6, len(c))}}" for c in COLUMNS) + f" {leg.wall:>6.0f}s  (wall: servers, "
            "migrations, tests)")
    out.append("")
    for leg in report.legs:
        if leg.problem:
            out += [f"fixes {leg.mode}: {leg.problem}", leg.log_tail, ""]
    off = report.leg("off")
    if off is not None and off.ran:
        failing = off.failing()
        out.append(f"Failing on HEAD (fixes off): {len(failing)}")
        out += [f"  {test} [{off.outcomes[test]}]: {_why(off.reasons.get(test, ''))}" for test in failing]
        out.append("")
    on = report.leg("on")
    if on is not None and on.ran and off is None:
        failing = on.failing()
        out.append(f"Failing with the fixes on: {len(failing)} (run --fixes both to compare with HEAD)")
        out += [f"  {test} [{on.outcomes[test]}]: {_why(on.reasons.get(test, ''))}" for test in failing]
        out.append("")
    if report.wrote_into_checkout:
        out.append(f"The run wrote into the checkout: {', '.join(report.wrote_into_checkout[:20])}")
    if off is not None and on is not None and off.ran and on.ran:
        differences = report.differences()
        edited = [difference for difference in differences if difference.allowed]
        broken = [difference for difference in differences if not difference.allowed]
        if edited:
            out.append(f"Tests the PR itself edits ({', '.join(on.pr_test_modules)}): {len(edited)} differ")
            out += [f"  {difference}" for difference in edited]
        if broken:
            out.append(f"Fixes on vs off: {len(broken)} tests end differently")
            out += [f"  {difference}" for difference in broken]
        else:
            out.append("Fixes on vs off: the same tests fail; every other test that ran on HEAD passes with the "
                       "fixes on" + (" (bar those the PR rewrites)" if edited else ""))
    out.append(f"{'PASS' if report.ok else 'FAIL'} in {report.wall:.0f} s")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.targets.antenna.suite", description=__doc__.split("\n")[0])
    parser.add_argument("--checkout", help="Antenna's backend (manage.py, ami/); default: CHAOS_TARGET=antenna:PATH, "
                        "else the snapshot beside the project")
    parser.add_argument("--fixes", choices=("off", "on", "both"), default="both")
    parser.add_argument("--timeout", type=float, default=LEG_TIMEOUT, help="seconds per leg (default %(default)s)")
    parser.add_argument("--logs", type=Path, help="keep each leg's `manage.py test` output and results here")
    args = parser.parse_args(argv)
    checkout = args.checkout
    if checkout is None:
        from harness.targets import TargetSpec, default_antenna_checkout

        spec = TargetSpec.parse() if os.environ.get("CHAOS_TARGET", "").startswith("antenna") else None
        checkout = spec.checkout if spec else default_antenna_checkout()
        if checkout is None:
            parser.error("no Antenna checkout: pass --checkout PATH or set CHAOS_TARGET=antenna:PATH")
    modes = ("off", "on") if args.fixes == "both" else (args.fixes,)
    report = run(checkout, modes, timeout=args.timeout, logs=args.logs)
    print(render(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
