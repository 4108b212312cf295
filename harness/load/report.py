"""What each Locust process of a swarm counted, merged for the invariants and laid out per worker.

Every process that runs users (the single process, or each worker of a distributed swarm) makes one *entry*:

    {"index": 0, "host": "...", "pid": 123, "users": 4, "counts": {"success_tasks": 96, ...},
     "handed": {"job:image": n}, "crashed": {"job:image": n}, "requests": {name: n},
     "failures": {"name: error": n}, "answered_between": [first, last]}

`merge` turns the entries into the swarm's counts (the counts file the load runner reads); `worker_rows` and
`worker_table` report them per process. Standard library only: the locustfile imports it.
"""

from __future__ import annotations

from collections import Counter

PER_KEY = ("handed", "crashed", "requests", "failures")  # maps summed key by key


def answered(counts: dict) -> int:
    """Tasks whose result POST was accepted (success or error results)."""
    return counts.get("success_tasks", 0) + counts.get("error_tasks", 0)


def merge(entries: list[dict]) -> dict:
    """The swarm's counts: each counter and per-key map summed over the entries, the answering window from the
    earliest first to the latest last accepted result POST, and one compact row per entry under "workers"."""
    totals: Counter = Counter()
    maps: dict[str, Counter] = {key: Counter() for key in PER_KEY}
    windows = [entry["answered_between"] for entry in entries if len(entry.get("answered_between") or ()) == 2]
    for entry in entries:
        totals.update(entry.get("counts") or {})
        for key in PER_KEY:
            maps[key].update(entry.get(key) or {})
    between = [min(w[0] for w in windows), max(w[1] for w in windows)] if windows else []
    return {**dict(sorted(totals.items())), **{key: dict(maps[key]) for key in PER_KEY},
            "answered_between": between, "workers": [compact(entry) for entry in entries]}


def compact(entry: dict) -> dict:
    """An entry without its per-image maps (those can be large; they are merged into the swarm's counts)."""
    return {key: value for key, value in entry.items() if key not in ("handed", "crashed")}


def worker_rows(workers: list[dict], answering_seconds: float) -> list[dict]:
    """Per worker: users, tasks answered and their rate over the swarm's answering window (so the workers' rates
    add up to the swarm's), requests and failed requests. Sorted by worker index."""
    rows = []
    for worker in sorted(workers, key=lambda w: w.get("index", 0)):
        tasks = answered(worker.get("counts") or {})
        rows.append({"index": worker.get("index", 0), "host": worker.get("host", ""), "pid": worker.get("pid"),
                     "users": worker.get("users", 0), "tasks": tasks,
                     "tasks_per_s": round(tasks / answering_seconds, 1) if answering_seconds else 0.0,
                     "crashed_tasks": (worker.get("counts") or {}).get("crashed_tasks", 0),
                     "requests": sum((worker.get("requests") or {}).values()),
                     "failures": sum((worker.get("failures") or {}).values())})
    return rows


def worker_table(rows: list[dict]) -> str:
    """The rows as a text table with a total line."""
    header = f"{'worker':>6} {'host':<16} {'pid':>7} {'users':>5} {'tasks':>6} {'tasks/s':>8} {'dropped':>7} " \
             f"{'requests':>8} {'failed':>6}"
    lines = [header]
    for row in rows:
        lines.append(f"{row['index']:>6} {row['host'][:16]:<16} {row['pid'] or '':>7} {row['users']:>5} "
                     f"{row['tasks']:>6} {row['tasks_per_s']:>8} {row['crashed_tasks']:>7} {row['requests']:>8} "
                     f"{row['failures']:>6}")
    total = {key: sum(row[key] for row in rows) for key in ("users", "tasks", "crashed_tasks", "requests",
                                                              "failures")}
    rate = round(sum(row["tasks_per_s"] for row in rows), 1)
    lines.append(f"{'all':>6} {'':<16} {'':>7} {total['users']:>5} {total['tasks']:>6} {rate:>8} "
                 f"{total['crashed_tasks']:>7} {total['requests']:>8} {total['failures']:>6}")
    return "\n".join(lines)
