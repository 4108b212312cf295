"""How long a whole Stack takes to come up: `python -m harness.infra.bench_startup [runs] [--no-snapshot]`.

The first run on a machine also pays for migrate and for saving the migrated snapshot; the first
run in an interpreter pays for initdb when there is no snapshot yet.
"""

from __future__ import annotations

import statistics
import sys
import time

from harness.infra.stack import Stack


def bench(runs: int = 3, **stack_kwargs) -> list[dict[str, float]]:
    """Start and stop `runs` stacks; one timings dict per run (seconds, incl. "total" and "stop")."""
    results = []
    for _ in range(runs):
        stack = Stack(**stack_kwargs).start()
        began = time.perf_counter()
        stack.stop()
        results.append({**stack.timings, "stop": time.perf_counter() - began})
    return results


def main(argv: list[str]) -> None:
    runs = [int(arg) for arg in argv if arg.isdigit()]
    results = bench(runs[0] if runs else 3, reuse_migrated="--no-snapshot" not in argv)
    steps = list(dict.fromkeys(step for result in results for step in result))
    print(f"{'step':<18}" + "".join(f"{f'run {i + 1}':>9}" for i in range(len(results))) + f"{'median':>9}")
    for step in steps:
        values = [result.get(step, 0.0) for result in results]
        print(f"{step:<18}" + "".join(f"{v:>9.3f}" for v in values) + f"{statistics.median(values):>9.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
