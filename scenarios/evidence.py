"""What a run must show besides its verdicts: the incident's own shape with the fixes off (a regression
scenario), or the precondition a control stands on (in both modes). Read off the run's history and final
snapshot, so a failed check cannot pass for the incident when something else went wrong."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from harness.checks.ops import accepted_results, select, successful_starts
from harness.checks.subjects import parse_ack
from harness.history import Op
from harness.settings import RunSettings

Shows = Callable[[list[Op], dict], bool]


@dataclass(frozen=True)
class Evidence:
    what: str  # in words, for the failure message and the docs
    shows: Shows


def _jobs(snapshot: dict) -> list[dict]:
    return list(snapshot.get("jobs", {}).values())


def _queue_looks(history: Iterable[Op], snapshot: dict, job: dict) -> list[dict]:
    """Every look at the job's NATS queue: the sampler's, then the final one."""
    looks = [op.value["queue"] for op in history
             if op.f == "sample" and isinstance(op.value, dict) and op.value.get("job") == job["id"]
             and op.value.get("queue")]
    return looks + ([job["queue"]] if job.get("queue") else [])


def still_started(queue: Callable[[dict], bool], what: str) -> Evidence:
    """A job is STARTED at the end and its final NATS queue matches `queue`."""
    return Evidence(f"a job still STARTED after the bound, {what}",
                    lambda history, snapshot: any(job["status"] == "STARTED" and queue(job.get("queue") or {})
                                                  for job in _jobs(snapshot)))


def still(status: str, what: str) -> Evidence:
    """A job is still `status` at the end (a state only the app's own run or cancel moves it out of)."""
    return Evidence(f"a job still {status} after the bound, {what}",
                    lambda history, snapshot: any(job["status"] == status for job in _jobs(snapshot)))


def lost_unnamed(queue: Callable[[dict, dict], bool], what: str) -> Evidence:
    """A job whose queue matched `queue(look, job)` at some look is a violation of lost_tasks_named: STARTED at
    the end, or failed without naming the loss and its cause."""
    from harness.checks.liveness import lost_tasks_named

    def shows(history, snapshot):
        unnamed = {v["job"] for v in lost_tasks_named(history, snapshot).samples if isinstance(v, dict)}
        return any(job["id"] in unnamed and any(queue(look, job) for look in _queue_looks(history, snapshot, job))
                   for job in _jobs(snapshot))

    return Evidence(f"a job STARTED at the end or failed without naming the loss and its cause, {what}", shows)


def running_while_unanswered() -> Evidence:
    """A job was still running when the lost quorum came back, unavailable_limit after it went (a violation of
    unanswered_jobs_failed by a job never failed during the loss)."""
    from harness.checks.liveness import unanswered_jobs_failed

    def shows(history, snapshot):
        samples = unanswered_jobs_failed(history, snapshot).samples
        return any(isinstance(v, dict) and v.get("status") not in ("FAILURE", "REVOKED") for v in samples)

    return Evidence("a job still running when the quorum came back, unavailable_limit after it went", shows)


def stream_held(factor: float) -> Evidence:
    """The job's stream held at least `factor` x its images at some look."""
    def shows(history, snapshot):
        return any(look["stream_exists"] and look["messages"] >= factor * job["images"] > 0
                   for job in _jobs(snapshot) for look in _queue_looks(history, snapshot, job))

    return Evidence(f"the stream held ≥ {factor:g} × the job's images at some look", shows)


def left_behind(status: str) -> Evidence:
    return Evidence(f"a {status} job's stream is still in NATS at the end",
                    lambda history, snapshot: any(job["status"] == status and (job.get("queue") or {}).get("stream_exists")
                                                  for job in _jobs(snapshot)))


def stored_twice() -> Evidence:
    return Evidence("an image has two stored results in one attempt",
                    lambda history, snapshot: any(job["results"]["duplicates"] for job in _jobs(snapshot)))


def stale_result_stored() -> Evidence:
    """A reply subject handed out before the job's last successful Start is among the attempt's stored results."""
    def shows(history, snapshot):
        for job in _jobs(snapshot):
            starts = successful_starts(history, job["id"])
            before = {s for op in select(history, f="reserve", type="ok", job=job["id"]) if starts and op.time < max(starts)
                      for s in op.value.get("reply_subjects", [])}
            if any(subject in before for _, subject in job["results"]["subjects"]):
                return True
        return False

    return Evidence("a result of a delivery handed out before the last Start is stored in the new attempt", shows)


def server_error() -> Evidence:
    return Evidence("a worker request was answered 500",
                    lambda history, snapshot: any(isinstance(op.value, dict) and op.value.get("status") == 500
                                                  for op in history if op.type in ("ok", "fail")))


def redelivered(expected: bool) -> Evidence:
    """Some task was (or no task was) handed out a second time: the delivery count in its reply subject."""
    def shows(history, snapshot):
        counts = [ref.delivered for op in select(history, f="reserve", type="ok")
                  for s in op.value.get("reply_subjects", []) if (ref := parse_ack(s)) is not None]
        return any(n >= 2 for n in counts) == expected and bool(counts)

    return Evidence("a task was handed out again after a worker died" if expected else
                    "no task was ever handed out twice", shows)


def max_deliver_exhausted() -> Evidence:
    return Evidence("tasks exhausted max_deliver (MAX_DELIVERIES advisories seen)",
                    lambda history, snapshot: any(op.f == "dead-letter" for op in history))


def redone_soon_after_accepted(ack_wait_fraction: float = 0.5) -> Evidence:
    """A task was handed out again within a fraction of ack_wait after its result had been accepted."""
    def shows(history, snapshot):
        ack_wait = RunSettings.of(snapshot.get("settings")).ack_wait
        accepted = {}  # task -> when its result was first accepted
        for _, outcome, subject in accepted_results(history):
            if (task := _task(subject)) is not None:
                accepted.setdefault(task, outcome.time)
        return any((task := _task(s)) in accepted and 0 <= op.time - accepted[task] < ack_wait_fraction * ack_wait
                   for op in select(history, f="reserve", type="ok") for s in op.value.get("reply_subjects", []))

    return Evidence(f"a task was handed out again within {ack_wait_fraction:g} × ack_wait after its result was "
                    "accepted", shows)


def _task(reply_subject: str) -> tuple | None:
    ref = parse_ack(reply_subject)
    return None if ref is None else (ref.stream, ref.consumer, ref.stream_seq)


def replayed() -> Evidence:
    """A message handed out as a first delivery twice in one attempt (a new consumer replayed the stream)."""
    def shows(history, snapshot):
        from harness.checks.duplicates import no_replayed_tasks

        return no_replayed_tasks(history, snapshot).ok is False

    return Evidence("a task already handed out was handed out afresh again (the stream was replayed)", shows)


def finished_but_not_completed() -> Evidence:
    """Every image has a stored result, yet the job did not end SUCCESS (a progress save was lost)."""
    def shows(history, snapshot):
        return any(job["status"] != "SUCCESS" and job["images"] and job["results"]["distinct_images"] >= job["images"]
                   for job in _jobs(snapshot))

    return Evidence("a job with a stored result for every image did not end SUCCESS", shows)
