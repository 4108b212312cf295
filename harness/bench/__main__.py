"""Run the benchmarks, print one table, write the measurements as JSON.

    python -m harness.bench                       # all of them (~6 minutes on two cores)
    python -m harness.bench detection tasks_call  # some
    python -m harness.bench --quick               # smaller sizes, for a smoke run
    python -m harness.bench --target antenna:PATH # the ones that run on a real Antenna checkout (docs/benchmarks.md)
    python -m harness.bench throughput --set pairs=2  # a keyword argument of one benchmark (--set repeatable)
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import psutil

from harness.targets import TargetSpec

BENCHMARKS = ("detection", "tasks_call", "sweep_cost", "throughput", "fixes_cost", "result_path", "startup",
              "cluster", "nats_objects")
QUICK = {"detection": {"repeats": 1}, "tasks_call": {"calls": 50}, "sweep_cost": {"jobs": 100, "passes": 2},
         "throughput": {"images": 400, "messages": 4000}, "fixes_cost": {"images": 200, "pairs": 1},
         "result_path": {"images": 50}, "startup": {"runs": 1}, "cluster": {"repeats": 1, "images": 200, "messages": 2000},
         "nats_objects": {"count": 200}}
# The benchmarks that also run on a real Antenna checkout (each module's run_antenna), and their smoke sizes
ON_ANTENNA = ("detection", "tasks_call", "sweep_cost", "throughput")
QUICK_ANTENNA = {"detection": {"repeats": 1}, "tasks_call": {"calls": 20}, "sweep_cost": {"jobs": 20, "passes": 2},
                 "throughput": {"images": 32, "pairs": 1, "messages": 4000, "short_pairs": 1}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.bench")
    parser.add_argument("names", nargs="*", metavar="name", help=f"any of {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes: checks that everything runs")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default reports/bench-<time>.json)")
    parser.add_argument("--target", default=None,
                        help="sandbox or antenna:PATH (an Antenna checkout); default: CHAOS_TARGET, else the sandbox")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="params",
                        help="a keyword argument of the one benchmark named (e.g. pairs=2), repeatable")
    args = parser.parse_args(argv)
    params = dict(_param(parser, text) for text in args.params)
    if params and len(args.names) != 1:
        parser.error("--set needs exactly one benchmark name")
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    try:
        target = TargetSpec.parse(args.target)
    except ValueError as exc:
        parser.error(str(exc))
    on_antenna = target.kind == "antenna"
    if on_antenna and set(args.names) - set(ON_ANTENNA):
        parser.error(f"on Antenna only {', '.join(ON_ANTENNA)} run; "
                     f"{', '.join(sorted(set(args.names) - set(ON_ANTENNA)))} need the sandbox")
    started, load_before = datetime.now(UTC), os.getloadavg()
    rows, seconds = [], {}
    for name in args.names or (ON_ANTENNA if on_antenna else BENCHMARKS):
        module = importlib.import_module(f"harness.bench.{name}")
        began = time.perf_counter()
        if on_antenna:
            rows += module.run_antenna(target, **{**(QUICK_ANTENNA[name] if args.quick else {}), **params})
        else:
            rows += module.run(**{**(QUICK[name] if args.quick else {}), **params})
        seconds[name] = round(time.perf_counter() - began, 1)
        print(f"{name}: done in {seconds[name]} s", file=sys.stderr)
    print_table(rows)
    out = args.out or Path("reports") / f"bench-{started:%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"python": platform.python_version(), "cpus": psutil.cpu_count(),
               "memory_gib": round(psutil.virtual_memory().total / 2**30, 1), "platform": platform.platform(),
               "load_average_before": load_before, "load_average_after": os.getloadavg()}
    out.write_text(json.dumps({"started_at": started.isoformat(timespec="seconds"), "quick": args.quick,
                               "target": str(target), "params": params,
                               "machine": machine, "seconds": seconds,
                               "measurements": [asdict(row) for row in rows]}, indent=2))
    print(f"\nwritten to {out}")
    return 0


def _param(parser: argparse.ArgumentParser, text: str) -> tuple[str, object]:
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        parser.error(f"--set {text!r}: expected NAME=VALUE")
    for kind in (int, float):
        try:
            return name, kind(value)
        except ValueError:
            pass
    return name, value


def print_table(rows) -> None:
    width = max(len(row.metric) for row in rows)
    print(f"{'benchmark':<11} {'metric':<{width}} {'value':>10} {'unit':<8} note")
    for row in rows:
        print(f"{row.benchmark:<11} {row.metric:<{width}} {row.value:>10.3f} {row.unit:<8} {row.note}")


if __name__ == "__main__":
    sys.exit(main())
