"""(c) What one reaper sweep pass costs over many running jobs.

A stack without Celery beat (so no sweep runs on its own) gets `jobs` STARTED async jobs of one image each,
every one with its own stream and consumer, nothing reserved. Then `manage.py chaos_sweep --passes N`
times `fixes.django.reaper.sweep()` in one process: the first pass stores an observation per job, later
passes also load the previous one (the steady state under beat). Per job a pass takes one queue snapshot
(consumer_info + stream_info) and the Redis counts; the stored observations are read in one query, the
snapshots taken concurrently in one bridge call, the counts in one Redis pipeline and the observations
written back in one upsert.

On Antenna (`run_antenna`, `--target antenna:PATH`): the same, with the fixes' PR applied, the jobs created
through the control endpoint and started with POST /run/, and the passes run by a short script under Antenna's
own interpreter and settings (Antenna's binding: its counts come from its AsyncJobStateManager keys in Redis).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psutil
import psycopg

from harness.bench.common import PIPELINE, Measurement, api, running_target
from harness.infra.base import RUN_ID, TMP_ROOT
from harness.targets import TargetSpec


def create_started_jobs(stack, count: int, threads: int = 4, timeout: float = 600) -> None:
    def create(_):
        with api(stack) as http:
            response = http.post("/jobs/", json={"images": 1, "pipeline": PIPELINE, "start": True})
            response.raise_for_status()

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(create, range(count)))
    _wait_started(stack, count, timeout)


def run(jobs: int = 1000, passes: int = 3, bulk: bool | None = None, baseline: str = "", storage: str = "file",
        nats_memlimit: str = "") -> list[Measurement]:
    """`bulk` (default: above 2,000 jobs) creates the jobs with `manage.py chaos_bulk_jobs` instead of through
    the API: rows in bulk, streams over one NATS connection with many requests in flight. `baseline`: the root of
    another checkout (e.g. `git archive REV fixes harness` unpacked) whose sweep passes alternate with this
    code's over the same jobs, for a same-run ratio. `storage`: the job streams' storage, "file" or "memory";
    "file,memory" sets up one stack of each side by side and alternates their passes (one process a pass), for
    a same-run comparison. `nats_memlimit`: GOMEMLIMIT of the nats-server (e.g. "10GiB"), else Go's default."""
    bulk = jobs > 2000 if bulk is None else bool(bulk)
    storages = [kind.strip() for kind in str(storage).split(",")]
    if len(storages) > 1:
        return _storages_compared(jobs, passes, bulk, storages, nats_memlimit)
    settings = {**SETTINGS, "storage": storages[0]}
    with _stack(settings, nats_memlimit) as stack:
        setup_seconds, setup = _set_up(stack, jobs, bulk)
        nats_rss = [_rss_mib(stack.nats.pid)]
        timeout = max(600, jobs / 50 * passes)
        if baseline:
            compared = _alternating(stack, baseline, passes, timeout)
        lines = stack.manage("chaos_sweep", "--passes", str(passes), timeout=timeout)
        nats_rss.append(_rss_mib(stack.nats.pid))
    results = _passes(lines, jobs)
    first, later = results[0]["seconds"], [r["seconds"] for r in results[1:]]
    steady = statistics.median(later) if later else first
    how = "bulk" if bulk else "API"
    name = "sweep_cost"
    note = f"{jobs} STARTED jobs, 1 image each, {storages[0]} storage; setup ({how}) {setup_seconds:.0f} s{setup}"
    return [Measurement(name, "first pass (stores observations)", first, "s", note),
            Measurement(name, "later pass, median", steady, "s",
                        f"{len(later)} passes: " + ", ".join(f"{s:.1f}" for s in later)),
            Measurement(name, "first pass per job", first / jobs * 1000, "ms", ""),
            Measurement(name, "later pass per job", steady / jobs * 1000, "ms", ""),
            Measurement(name, "jobs swept per second", jobs / steady, "jobs/s", ""),
            Measurement(name, "sweep process peak RSS", max(r["peak_rss_mib"] for r in results), "MiB",
                        "the one process running every pass"),
            Measurement(name, "nats-server RSS", max(nats_rss), "MiB",
                        f"after setup {nats_rss[0]:.0f}, after the passes {nats_rss[1]:.0f}"
                        + (f"; GOMEMLIMIT {nats_memlimit}" if nats_memlimit else ""))] + (
        _compared_rows(compared, jobs) if baseline else [])


SETTINGS = {"fixes": "on", "ack_wait": 300, "max_deliver": 3, "sweep_interval": 60}


@contextlib.contextmanager
def _stack(settings: dict, nats_memlimit: str = "") -> Iterator:
    """A sandbox stack without beat, thrown away on exit; `nats_memlimit` goes to its nats-server as GOMEMLIMIT."""
    stack = TargetSpec("sandbox").build(settings, web_workers=2, beat=False)
    if nats_memlimit:
        stack.nats.extra_env["GOMEMLIMIT"] = nats_memlimit
    stack.start()
    try:
        yield stack
    finally:
        stack.stop(graceful=False)


def _set_up(stack, jobs: int, bulk: bool) -> tuple[float, str]:
    """The jobs; (seconds, a note with the bulk command's own phase times)."""
    began = time.perf_counter()
    if not bulk:
        create_started_jobs(stack, jobs)
        return time.perf_counter() - began, ""
    # nats-server scans every stream of the account when it adds one: the setup grows with the square of `jobs`
    out = stack.manage("chaos_bulk_jobs", "--count", str(jobs), timeout=max(600, jobs / 20, (jobs / 1000) ** 2))
    phases = json.loads(out.strip().splitlines()[-1])
    return time.perf_counter() - began, (f" (rows {phases['rows_seconds']:.0f} s, Redis {phases['redis_seconds']:.0f} s,"
                                         f" NATS {phases['nats_seconds']:.0f} s)")


def _passes(lines: str, jobs: int) -> list[dict]:
    results = [json.loads(line) for line in lines.strip().splitlines() if line.startswith("{")]
    assert all(r["looked_at"] == jobs and r["failed"] == 0 and r.get("skipped", 0) == 0
               for r in results), results
    return results


def _storages_compared(jobs: int, passes: int, bulk: bool, storages: list[str], nats_memlimit: str) -> list[Measurement]:
    """One stack per storage, all up at once with the same jobs; then `passes` rounds of one pass on each in
    turn, each pass its own `chaos_sweep` process (the first stores the observations)."""
    rows, seconds, rss = [], {kind: [] for kind in storages}, {kind: [] for kind in storages}
    with contextlib.ExitStack() as every:
        stacks = {kind: every.enter_context(_stack({**SETTINGS, "storage": kind}, nats_memlimit))
                  for kind in storages}
        for kind, stack in stacks.items():
            setup_seconds, setup = _set_up(stack, jobs, bulk)
            rows.append(Measurement("sweep_cost", f"[{kind}] setup", setup_seconds, "s",
                                    f"{jobs} STARTED jobs, 1 image each{setup}"))
            rss[kind].append(_rss_mib(stack.nats.pid))
        for _ in range(passes):
            for kind, stack in stacks.items():
                result = _passes(stack.manage("chaos_sweep", "--passes", "1", timeout=max(600, jobs / 50)), jobs)[0]
                seconds[kind].append(result["seconds"])
                rss[kind].append(_rss_mib(stack.nats.pid))
    for kind in storages:
        first, later = seconds[kind][0], seconds[kind][1:] or seconds[kind]
        rows += [Measurement("sweep_cost", f"[{kind}] first pass per job", first / jobs * 1000, "ms",
                             f"{first:.2f} s"),
                 Measurement("sweep_cost", f"[{kind}] later pass per job, median",
                             statistics.median(later) / jobs * 1000, "ms",
                             "alternating; all: " + ", ".join(f"{s:.2f}" for s in seconds[kind]) + " s"),
                 Measurement("sweep_cost", f"[{kind}] nats-server RSS", max(rss[kind]), "MiB",
                             f"after setup {rss[kind][0]:.0f}, after the passes {rss[kind][-1]:.0f}")]
    base = storages[0]
    ratios = [other / ref for ref, other in zip(seconds[base][1:], seconds[storages[1]][1:], strict=True)]
    if ratios:
        rows.append(Measurement("sweep_cost", f"{storages[1]} / {base}, later pass, median", statistics.median(ratios),
                                "ratio", "all: " + ", ".join(f"{r:.2f}" for r in ratios)))
    return rows


def _alternating(stack, baseline: str, rounds: int, timeout: float) -> dict[str, list[float]]:
    """One pass of the code at `baseline` (a checkout's root: its fixes/ and harness/ go first on the path), then
    one of this code, `rounds` times, over the same jobs."""
    seconds: dict[str, list[float]] = {"baseline": [], "this": []}
    for _ in range(rounds):
        for which in seconds:
            path = {"PYTHONPATH": os.pathsep.join(filter(None, [baseline, stack.env.get("PYTHONPATH")]))} \
                if which == "baseline" else {}
            env = {**stack.env, **path, "CHAOS_RUN_ID": RUN_ID, "CHAOS_OWNER_PID": str(os.getpid())}
            done = subprocess.run([sys.executable, "-m", "django", "chaos_sweep", "--passes", "1"], env=env,
                                  capture_output=True, text=True, timeout=timeout, cwd=TMP_ROOT, check=True)
            seconds[which] += [json.loads(line)["seconds"] for line in done.stdout.splitlines() if line.startswith("{")]
    return seconds


def _compared_rows(seconds: dict[str, list[float]], jobs: int) -> list[Measurement]:
    ratios = [new / old for old, new in zip(seconds["baseline"], seconds["this"], strict=True)]
    return [Measurement("sweep_cost", "baseline code: pass per job, median", statistics.median(seconds["baseline"])
                        / jobs * 1000, "ms", f"{len(ratios)} passes, alternating with this code's"),
            Measurement("sweep_cost", "this code: pass per job, median (alternating)",
                        statistics.median(seconds["this"]) / jobs * 1000, "ms", ""),
            Measurement("sweep_cost", "this / baseline, pass time, median", statistics.median(ratios), "ratio",
                        "all: " + ", ".join(f"{r:.2f}" for r in ratios))]


def _rss_mib(pid: int | None) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20 if pid else float("nan")


# --- on Antenna -------------------------------------------------------------------------------------------

# One process with Antenna's interpreter, settings and code (the fixes' PR applied), timing the fixes' sweep as
# its beat task `fixes.sweep` runs it; one JSON line per pass, like chaos_sweep.
SWEEP_SCRIPT = """
import json, sys, time
import django
django.setup()
from fixes.django import reaper
for _ in range(int(sys.argv[1])):
    began = time.perf_counter()
    result = reaper.sweep()
    print(json.dumps({"seconds": time.perf_counter() - began, "looked_at": result.looked_at,
                      "failed": len(result.failed), "skipped": len(result.skipped),
                      "unreachable": result.unreachable}))
"""


def create_started_jobs_on(target, count: int, threads: int = 4, timeout: float = 600) -> None:
    """`count` jobs of one image through the target's create_path, each started with POST /run/."""
    def create(_):
        with api(target) as http:
            response = http.post(target.create_path, json={"images": 1, "pipeline": PIPELINE})
            response.raise_for_status()
            http.post(f"/jobs/{response.json()['id']}/run/").raise_for_status()

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(create, range(count)))
    _wait_started(target, count, timeout)


def _wait_started(target, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(target.settings["CHAOS_DATABASE_URL"], autocommit=True) as db:
        while db.execute("select count(*) from jobs_job where status = 'STARTED'").fetchone()[0] < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {count} jobs STARTED after {timeout}s")
            time.sleep(0.5)


def sweep_in(target, passes: int, timeout: float = 600) -> list[dict]:
    """Run SWEEP_SCRIPT with the target's interpreter and environment (Antenna's virtualenv, its settings module
    chaos_antenna_settings, the patched copy of the checkout on its path)."""
    env = {**os.environ, **target.env, "CHAOS_RUN_ID": RUN_ID, "CHAOS_OWNER_PID": str(os.getpid())}
    done = subprocess.run([target.python, "-c", SWEEP_SCRIPT, str(passes)], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=TMP_ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"the sweep failed in Antenna's environment ({done.returncode}):\n"
                           f"{done.stderr[-4000:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def run_antenna(spec, jobs: int = 200, passes: int = 3) -> list[Measurement]:
    """The same method on Antenna with the fixes' PR: beat off (neither the fixes' sweep nor HEAD's health check
    runs by itself), `jobs` STARTED async_api jobs of one image each, then `passes` sweeps in one process with
    Antenna's interpreter. No job may be failed or skipped."""
    settings = {"fixes": "on", "ack_wait": 300, "max_deliver": 2, "sweep_interval": 60}
    with running_target(spec, settings, web_workers=2, beat=False) as target:
        began = time.perf_counter()
        create_started_jobs_on(target, jobs)
        setup_seconds = time.perf_counter() - began
        results = sweep_in(target, passes)
    assert all(r["looked_at"] == jobs and r["failed"] == 0 and r.get("skipped", 0) == 0
               for r in results), results
    first, later = results[0]["seconds"], [r["seconds"] for r in results[1:]]
    steady = statistics.median(later) if later else first
    name = "sweep_cost"
    note = f"Antenna, fixes on; {jobs} STARTED jobs, 1 image each; setup {setup_seconds:.0f} s"
    return [Measurement(name, "[antenna] first pass (stores observations)", first, "s", note),
            Measurement(name, "[antenna] later pass, median", steady, "s", f"{len(later)} passes"),
            Measurement(name, "[antenna] first pass per job", first / jobs * 1000, "ms", ""),
            Measurement(name, "[antenna] later pass per job", steady / jobs * 1000, "ms", ""),
            Measurement(name, "[antenna] jobs swept per second", jobs / steady, "jobs/s", "")]
