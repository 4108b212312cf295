"""Small readers over the timeline, shared by the checkers (pure: lists in, lists out)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from harness.history import Op

TERMINAL = ("SUCCESS", "FAILURE", "REVOKED")


def select(history: Iterable[Op], f: str | None = None, type: str | None = None,
           process: str | None = None, job: int | None = None) -> list[Op]:
    return [op for op in history
            if (f is None or op.f == f) and (type is None or op.type == type)
            and (process is None or op.process == process)
            and (job is None or job_of(op) == job)]


def job_of(op: Op) -> int | None:
    value = op.value
    if isinstance(value, dict) and isinstance(value.get("job"), int):
        return value["job"]
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def calls(history: Iterable[Op], f: str) -> list[tuple[Op, Op]]:
    """(invoke, outcome) pairs of one kind of call. Each process makes one call at a time, so an outcome
    belongs to that process's latest invoke."""
    open_, pairs = {}, []
    for op in history:
        if op.f != f:
            continue
        if op.type == "invoke":
            open_[op.process] = op
        elif op.process in open_:
            pairs.append((open_.pop(op.process), op))
    return pairs


def accepted_results(history: Iterable[Op]) -> list[tuple[Op, Op, str]]:
    """(invoke, outcome, reply subject) of every result a /result/ POST got accepted (answered ok, not refused)."""
    found = []
    for invoke, outcome in calls(history, "post"):
        if outcome.type != "ok" or not isinstance(invoke.value, dict):
            continue
        refused = (outcome.value or {}).get("refused") or {}
        found += [(invoke, outcome, s) for s in invoke.value.get("reply_subjects") or [] if s not in refused]
    return found


def answered(op: Op) -> int | None:
    value = op.value if isinstance(op.value, dict) else {}
    return value.get("status") if isinstance(value.get("status"), int) else None


def successful_starts(history: Iterable[Op], job: int) -> list[float]:
    """When each Start of the job that was answered 2xx was sent (a refused 409 starts nothing)."""
    return [invoke.time for invoke, outcome in calls(history, "start")
            if job_of(invoke) == job and outcome.type == "ok" and (answered(outcome) or 200) < 300]


# Faults after which Redis holds nothing: the jobs' progress and the Celery queue (accepted results) are gone
REDIS_WIPES = ("redis-restart", "redis-flush")


def redis_wipes(history: Iterable[Op]) -> list[float]:
    """When the nemesis began wiping Redis (restart without persistence, or FLUSHALL)."""
    return [op.time for op in history if op.process == "nemesis" and op.f == "inject" and op.type == "invoke"
            and isinstance(op.value, dict) and op.value.get("fault") in REDIS_WIPES]


# Faults after which nats-server may have lost what it had not synced: its consumers' delivery and ack state
NATS_CRASHES = ("nats-kill", "nats-lose-writes", "nats-lose-quorum")


def nats_crashes(history: Iterable[Op]) -> list[float]:
    """When the nemesis crashed nats-server (SIGKILL, a lost-writes crash, or a restart that wiped its store)."""
    return [op.time for op in history if op.process == "nemesis" and op.f == "inject" and op.type == "invoke"
            and isinstance(op.value, dict) and (op.value.get("fault") in NATS_CRASHES
                                                or op.value.get("fault") == "nats-restart" and op.value.get("wipe"))]


# Faults during which nats-server answers nothing (paused, down or restarting); on a cluster, the node faults:
# clients of the node that dies or is cut off lose what sat in their socket, and a consumer's new leader keeps
# no ack timers the old one had restarted (+WPI), so it redelivers at once what was still pending
NATS_OUTAGES = ("nats-pause", "nats-freeze", "nats-kill", "nats-restart", "nats-lose-writes", "nats-kill-follower",
                "nats-kill-stream-leader", "nats-kill-meta-leader", "nats-lose-quorum", "nats-node-wipe", "nats-partition")


def nats_outages(history: Sequence[Op]) -> list[tuple[float, float]]:
    """(from, to) of each NATS outage the nemesis caused: its inject's ask to the end of its heal (nodes that
    come back elect their leaders while the heal waits for them), or, for a one-shot fault, the inject's answer."""
    windows = []
    for i, op in enumerate(history):
        if not (op.process == "nemesis" and op.f == "inject" and op.type == "invoke" and isinstance(op.value, dict)
                and op.value.get("fault") in NATS_OUTAGES):
            continue
        fault, end = op.value["fault"], None
        for later in history[i + 1:]:
            if later.process == "nemesis" and isinstance(later.value, dict) and later.value.get("fault") == fault:
                if later.f == "heal":
                    end = later.time
                    if later.type != "invoke":
                        break  # the heal's answer
                if later.f == "inject" and later.type != "invoke":
                    end = later.time  # a one-shot's answer; a heal after it extends the window
        windows.append((op.time, end if end is not None else float("inf")))
    return windows


def sample_errors(history: Iterable[Op], unavailable: bool | None = None) -> list[dict]:
    """The sampler's failed reads; unavailable=False: only misreads (not "the source did not answer")."""
    return [op.value for op in history if op.f == "sample-error" and isinstance(op.value, dict)
            and (unavailable is None or bool(op.value.get("unavailable")) == unavailable)]


def ended_at(history: Sequence[Op], snapshot: dict, job: dict) -> float | None:
    """When the job reached its final status: the database's finished_at, else the sampler's status op."""
    if job.get("finished_at") is not None:
        return job["finished_at"]
    seen = [op.time for op in select(history, f="status", job=job["id"])
            if op.value.get("status") == job["status"] and op.value.get("attempt") == job["attempt"]]
    return seen[-1] if seen else None


def jobs_of(snapshot: dict) -> list[dict]:
    return sorted(snapshot.get("jobs", {}).values(), key=lambda job: job["id"])


def settle(history: Sequence[Op]) -> Op | None:
    """The runner's `settle` invoke: every fault is healed from here on; its value carries the bound."""
    found = select(history, f="settle", type="invoke", process="runner")
    return found[-1] if found else None


def load(path: str | Path) -> list[Op]:
    """A timeline written by History.to_jsonl, read back for checking again."""
    with open(path) as lines:
        return [Op(**json.loads(line)) for line in lines if line.strip()]
