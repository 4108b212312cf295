"""Hand-built timelines and snapshots for the checkers, and the meta-test over them.

A case is a function decorated with `@verdict_case(checker, expect)` that builds (history, snapshot); the
decorator turns it into a test asserting the checker answers `expect` (True pass, False fail, None
unknown) and registers it. The case modules are tests/unit/test_checkers_*.py. Snapshots have the shape
`harness.checks.snapshot.collect` returns (plus the runner's `services`); build them with `job` and `snapshot`.
"""

from __future__ import annotations

import functools
import importlib
from collections import defaultdict
from pathlib import Path

import pytest

from harness.checks import CHECKS
from harness.checks.nats_reader import empty_queue
from harness.history import Op

T0 = 1_000.0  # unix seconds: the run begins
COVERED: dict[str, set] = defaultdict(set)  # checker name -> the answers its cases expect


def verdict_case(checker: str, expect: bool | None):
    if checker not in CHECKS:
        raise KeyError(f"no checker {checker!r}")

    def wrap(build):
        COVERED[checker].add(expect)

        @functools.wraps(build)
        def test():
            history, snapshot = build()
            found = CHECKS[checker](sorted(history, key=lambda op: op.time), snapshot)
            assert found.ok is expect, f"{checker} answered {found.label}: {found.counts} {found.samples}"
            assert found.name == checker

        return test

    return wrap


# --- snapshots ------------------------------------------------------------------------------------------------


def queue(stream: bool = True, consumer: bool = True, job_id: int = 1, attempt: int = 1, **counts) -> dict:
    """A queue as nats_reader.read_queue returns it (fencing on: a consumer per attempt)."""
    found = empty_queue(f"job-{job_id}-consumer-a{attempt}")
    found.update(stream_exists=stream, consumer_exists=stream and consumer, **counts)
    return found


def job(id: int = 1, status: str = "SUCCESS", images: int = 2, attempt: int = 1, processed: int | None = None,
        finished_at: float | None = T0 + 5, logs: list | None = None, results: dict | None = None,
        queue: dict | None = None, redis: dict | None = None) -> dict:
    """One job of the final snapshot; a SUCCESS job is done by default, any other has processed nothing."""
    done = status == "SUCCESS"
    processed = images if processed is None and done else processed or 0
    terminal = status in ("SUCCESS", "FAILURE", "REVOKED")
    return {
        "id": id, "status": status, "attempt": attempt, "images": images,
        "progress": {"total_images": images, "processed": processed, "remaining": images - processed, "failed": 0},
        "finished_at": finished_at if terminal else None,
        "logs": logs if logs is not None else [{"level": "INFO", "message": f"Published {images} tasks"}],
        "results": results if results is not None else {
            "rows": processed, "distinct_images": processed, "duplicates": [],
            "subjects": [[f"img{i}", subject(i + 1, job_id=id, attempt=attempt)] for i in range(processed)]},
        "queue": queue if queue is not None else empty_queue(f"job-{id}-consumer-a{attempt}"),
        "redis": redis if redis is not None else {"exists": False, "total": 0, "remaining": 0, "failed": 0,
                                                  "processed": 0},
    }


def snapshot(*jobs: dict, services: dict | None = None) -> dict:
    return {"taken_at": T0 + 30, "settings": {"CHAOS_FIXES": "on"}, "jobs": {j["id"]: j for j in jobs},
            "read_errors": {}, "services": services if services is not None else {"nats": True, "web": True}}


# --- timelines ----------------------------------------------------------------------------------------------


def subject(seq: int, job_id: int = 1, attempt: int = 1, delivered: int = 1, pending: int = 0) -> str:
    return (f"$JS.ACK.job_{job_id}.job-{job_id}-consumer-a{attempt}.{delivered}.{seq}.{seq}.{int(T0 * 1e9) + seq}"
            f".{pending}")


def call(process: str, f: str, at: float, value: dict, outcome: dict | None = None, type: str = "ok") -> list[Op]:
    """An invoke and its outcome 0.1 s later."""
    return [Op(at, process, f, "invoke", value), Op(at + 0.1, process, f, type, {**value, **(outcome or {})})]


def start(at: float, job_id: int = 1, status: int = 200) -> list[Op]:
    return call("client", "start", at, {"job": job_id}, {"status": status}, "ok" if status < 400 else "fail")


def reserve(at: float, subjects: list[str], job_id: int = 1, process: str = "worker-0") -> list[Op]:
    return call(process, "reserve", at, {"job": job_id}, {"status": 200, "reply_subjects": subjects})


def post(at: float, subjects: list[str], job_id: int = 1, process: str = "worker-0", refused: dict | None = None):
    return call(process, "post", at, {"job": job_id, "reply_subjects": subjects},
                {"status": 200, "refused": refused or {}})


def settle(at: float, bound: float = 10.0) -> list[Op]:
    return [Op(at, "runner", "settle", "invoke", {"bound": bound})]


def sample(at: float, found: dict | None, job_id: int = 1, status: str = "STARTED", attempt: int = 1) -> Op:
    return Op(at, "sampler", "sample", "ok", {"job": job_id, "status": status, "attempt": attempt, "queue": found})


def sample_error(at: float, source: str = "nats", unavailable: bool = False, jobs: tuple = (1,)) -> Op:
    return Op(at, "sampler", "sample-error", "fail", {"source": source, "jobs": list(jobs),
                                                        "error": "KeyError: 'state'", "unavailable": unavailable})


# --- the meta-tests -------------------------------------------------------------------------------------------


def load_cases() -> dict[str, set]:
    for path in sorted(Path(__file__).parent.glob("test_checkers_*.py")):
        importlib.import_module(f"{__package__}.{path.stem}")
    return COVERED


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_every_checker_has_a_passing_a_failing_and_an_unknown_case(name):
    missing = {True, False, None} - load_cases()[name]
    assert not missing, f"{name} has no case expecting {sorted(map(str, missing))}"


@pytest.mark.parametrize("name", sorted(CHECKS))
@pytest.mark.parametrize("empty", [{}, {"jobs": {}}, {"taken_at": T0, "settings": {}, "jobs": {}, "services": {}}])
def test_an_empty_history_and_snapshot_is_no_evidence(name, empty):
    found = CHECKS[name]([], empty)
    assert found.ok is None and found.counts.get("evidence") == 0, found
