"""Every job ends, and a job that fails says why."""

from __future__ import annotations

import re
from collections.abc import Sequence

from harness.checks.ops import (
    TERMINAL,
    accepted_results,
    answered,
    calls,
    ended_at,
    job_of,
    jobs_of,
    redis_wipes,
    select,
    settle,
    successful_starts,
)
from harness.checks.subjects import parse_ack
from harness.checks.verdict import Verdict, no_evidence, verdict
from harness.history import Op
from harness.settings import RunSettings


def terminal_within_bound(history: Sequence[Op], snapshot: dict) -> Verdict:
    """Each job is SUCCESS, FAILURE or REVOKED, at the latest `bound` seconds after every fault was healed.

    When a job ended is the database's own `finished_at` (final snapshot), not a sample: a job that ends
    after the runner stopped waiting, but before the snapshot, is seen late. Unknown: no job in the
    snapshot; a terminal job without finished_at; a terminal job but no settle mark (no bound to judge by).
    """
    jobs = jobs_of(snapshot)
    if not jobs:
        return no_evidence("terminal_within_bound", "no job in the final snapshot")
    mark = settle(history)
    bound = mark.value.get("bound") if mark is not None else None
    violations, unknown = [], []
    for job in jobs:
        if job["status"] not in TERMINAL:
            queue = job.get("queue") or {}
            starts = [answered(outcome) or outcome.type for invoke, outcome in calls(history, "start")
                      if job_of(invoke) == job["id"]]
            violations.append({"job": job["id"], "status": job["status"], "attempt": job["attempt"],
                               "progress": job["progress"], "bound_s": bound, "start_answers": starts,
                               "nats": {k: queue.get(k) for k in ("stream_exists", "messages", "num_pending",
                                                                  "num_ack_pending", "num_redelivered")}})
        elif bound is None:
            unknown.append({"job": job["id"], "why": "no settle mark in the history: no bound to judge by"})
        elif job.get("finished_at") is None:
            unknown.append({"job": job["id"], "status": job["status"], "why": "terminal without finished_at"})
        elif job["finished_at"] > mark.time + bound:
            violations.append({"job": job["id"], "status": job["status"], "bound_s": bound,
                               "after_heal_s": round(job["finished_at"] - mark.time, 2)})
    terminal = sum(job["status"] in TERMINAL for job in jobs)
    return verdict("terminal_within_bound", violations, {"jobs": len(jobs), "terminal": terminal, "bound_s": bound},
                   unknown)


def failure_has_reason(history: Sequence[Op], snapshot: dict) -> Verdict:
    """A FAILURE without an ERROR line on the job's log is a failure nobody can act on.

    Jobs read, none FAILURE: a pass (the database says there is no failure to explain). No job: unknown.
    """
    if not jobs_of(snapshot):
        return no_evidence("failure_has_reason", "no job in the final snapshot")
    violations, failed = [], 0
    for job in jobs_of(snapshot):
        if job["status"] != "FAILURE":
            continue
        failed += 1
        reasons = [line["message"] for line in job["logs"] if line["level"] == "ERROR" and line["message"].strip()]
        if not reasons:
            violations.append({"job": job["id"], "last_log_lines": [line["message"] for line in job["logs"][-3:]]})
    return verdict("failure_has_reason", violations, {"failed_jobs": failed})


# faults that take tasks out of a stream, and the word a failure reason names each one's cause with
LOSS_CAUSES = {"stream-recreate": "empty", "stream-purge": "purge", "nats-lose-writes": "restart"}
LOSS_FAULTS = tuple(LOSS_CAUSES)
LOSS_WORDS = re.compile(r"\b(lost|gone|purged|aged out)\b", re.IGNORECASE)


def lost_tasks_named(history: Sequence[Op], snapshot: dict) -> Verdict:
    """A job whose tasks a fault took out of its stream (LOSS_FAULTS; nats-lose-writes without a job hits
    every job started before it) ends SUCCESS (what was lost was done) or FAILURE with a reason that names
    the loss (LOSS_WORDS) and its cause (LOSS_CAUSES: a crash is a server restart, not a deleted stream):
    not STARTED with nothing left to hand out, nor failed as "exhausted".

    No job hit in the snapshot: unknown (the run is judged only when it injected such a fault)."""
    hit: dict[int, set[str]] = {}
    first_hit: dict[int, float] = {}
    for op in select(history, f="inject", type="ok"):
        fault = op.value.get("fault") if isinstance(op.value, dict) else None
        if fault in LOSS_CAUSES:
            target = job_of(op)
            jobs = {target} if target is not None else {job_of(s) for s in select(history, f="start", type="ok")
                                                        if s.time <= op.time} - {None}
            for job in jobs:
                hit.setdefault(job, set()).add(LOSS_CAUSES[fault])
                first_hit.setdefault(job, op.time)
    # a job that had ended before the fault lost nothing it still needed (its stream was deleted, or is history)
    judged = [job for job in jobs_of(snapshot) if job["id"] in hit
              and not (job["status"] in TERMINAL
                       and _ended_before(ended_at(history, snapshot, job), first_hit[job["id"]]))]
    if not judged:
        return no_evidence("lost_tasks_named", "no job in the snapshot lost tasks to a fault", {"hit": len(hit)})
    violations = []
    for job in judged:
        reasons = [line["message"] for line in job["logs"] if line["level"] == "ERROR"]
        named = any(LOSS_WORDS.search(r) and all(cause in r.lower() for cause in hit[job["id"]]) for r in reasons)
        if job["status"] == "SUCCESS" or job["status"] in ("FAILURE", "REVOKED") and named:
            continue  # REVOKED: failed naming the loss, then revoked by a watchdog or a person (it stays ended)
        violations.append({"job": job["id"], "status": job["status"], "causes": sorted(hit[job["id"]]),
                           "reason": [r[:200] for r in reasons[-1:]]})
    return verdict("lost_tasks_named", violations, {"jobs_hit": len(judged)})


# faults after which no node answers for a job's queue (no quorum left), and the words a reason names that with
UNANSWERED_FAULTS = ("nats-lose-quorum",)
UNANSWERED_WORDS = re.compile(r"\b(no answer|quorum|not answering|unavailable)\b", re.IGNORECASE)
PASS_NATS_WAIT = 10.0  # a sweep pass during the loss may wait out a snapshot and a server check (5 s each)


def unanswered_window(settings: dict) -> float | None:
    """Seconds after a loss of quorum by which the fixes must have failed the jobs it hit: unavailable_limit,
    then two sweep passes that may each wait out NATS. None: the limit is off."""
    run = RunSettings.of(settings)
    limit = run.unavailable_limit()
    return limit + 2 * (run.sweep_interval + PASS_NATS_WAIT) if limit > 0 else None


def unanswered_jobs_failed(history: Sequence[Op], snapshot: dict) -> Verdict:
    """A job running when its queue lost every answer (UNANSWERED_FAULTS) is FAILURE before the quorum came back
    when the loss lasted `unanswered_window`, its reason naming the cause (UNANSWERED_WORDS): not STARTED for as
    long as the loss lasts. Nor is it failed for that before unavailable_limit has passed (a short loss, e.g.
    the soak's, must fail nothing).

    Unknown: no job was running when such a fault struck."""
    settings = snapshot.get("settings") or {}
    window, limit = unanswered_window(settings), RunSettings.of(settings).unavailable_limit()
    losses = [(op.time, _healed_at(history, op)) for op in select(history, f="inject", type="ok")
              if isinstance(op.value, dict) and op.value.get("fault") in UNANSWERED_FAULTS]
    violations, judged = [], 0
    for job in jobs_of(snapshot):
        ended, starts = ended_at(history, snapshot, job), successful_starts(history, job["id"])
        for began, healed in losses:
            if not starts or min(starts) > began or job["status"] in TERMINAL and _ended_before(ended, began):
                continue  # not running when the quorum went
            judged += 1
            reasons = [line["message"] for line in job["logs"] if line["level"] == "ERROR"]
            failed = job["status"] in ("FAILURE", "REVOKED") and ended is not None and ended <= healed \
                and any(UNANSWERED_WORDS.search(reason) for reason in reasons)
            seen = {"job": job["id"], "status": job["status"], "lost_for_s": round(healed - began, 1),
                    "ended_after_loss_s": round(ended - began, 1) if ended else None,
                    "reason": [r[:200] for r in reasons[-1:]]}
            if failed and (limit <= 0 or ended - began < limit):
                violations.append({**seen, "why": "failed for no answer before unavailable_limit"})
            elif not failed and window is not None and healed - began >= window:
                violations.append(seen)
    if not judged:
        return no_evidence("unanswered_jobs_failed", "no job was running when a loss of quorum struck",
                           {"losses": len(losses)})
    return verdict("unanswered_jobs_failed", violations, {"jobs_hit": judged, "window_s": window})


def _healed_at(history: Sequence[Op], inject: Op) -> float:
    """When the nemesis began healing the fault `inject` injected (the end of the run if never)."""
    fault = inject.value.get("fault")
    later = [op.time for op in history if op.time >= inject.time and op.f == "heal" and op.type == "invoke"
             and isinstance(op.value, dict) and op.value.get("fault") == fault]
    return min(later) if later else max((op.time for op in history), default=inject.time)


def _ended_before(ended: float | None, at: float) -> bool:
    return ended is not None and ended < at


def services_alive(history: Sequence[Op], snapshot: dict) -> Verdict:
    """Every server process runs at the end: the nemesis heals what it broke, so one that is down died by
    itself (e.g. a Celery worker that crashed on a broker reconnect)."""
    services = snapshot.get("services")
    if not services:
        return no_evidence("services_alive", "no process information in the snapshot", {"services": 0})
    violations = [{"service": name, "running": False} for name, running in sorted(services.items()) if not running]
    return verdict("services_alive", violations, {"services": len(services)})


def not_failed_with_results_in_hand(history: Sequence[Op], snapshot: dict) -> Verdict:
    """A job is not failed for lost or dead tasks after a result for every one of its tasks was accepted.

    Tasks whose results wait in the queue behind the web app are not lost: if NATS gives up on them
    meanwhile, failing the job throws away work that is already done. A job the host REVOKED by itself (no
    cancel or revoke of it in the history: a watchdog judging it stalled) is judged the same way.

    Not judged: a job whose Redis was wiped (restart or FLUSHALL) between its Start and its failure. The
    wipe takes the accepted results waiting in the Celery queue and the job's progress with it, so they are
    no longer in hand, and the app fails such a job by design ("Job state missing in Redis").

    Jobs read, none FAILURE: a pass (nothing was failed). No job: unknown. A task is named by the stream
    sequence in its reply subject, parsed here (subjects.parse_ack), not by the fixes' parser.
    """
    if not jobs_of(snapshot):
        return no_evidence("not_failed_with_results_in_hand", "no job in the final snapshot")
    violations, failed, wiped = [], 0, 0
    wipes = redis_wipes(history)
    asked = {job_of(op) for op in history if op.type == "invoke" and (
        op.f == "cancel" or op.f == "inject" and isinstance(op.value, dict) and op.value.get("fault") == "revoke")}
    for job in jobs_of(snapshot):
        by_itself = job["status"] == "REVOKED" and job["id"] not in asked
        if not (job["status"] == "FAILURE" or by_itself) or not job["images"]:
            continue
        failed += 1
        failed_at = ended_at(history, snapshot, job) or snapshot.get("taken_at", float("inf"))
        since = max(successful_starts(history, job["id"]), default=0.0)
        if any(since <= wipe < failed_at for wipe in wipes):
            wiped += 1
            continue
        handed = {subject for op in select(history, f="reserve", type="ok", job=job["id"]) if op.time >= since
                  for subject in op.value.get("reply_subjects", [])}  # deliveries of the current attempt
        accepted = {delivery.stream_seq for invoke, _, subject in accepted_results(history)
                    if job_of(invoke) == job["id"] and since <= invoke.time < failed_at and subject in handed
                    and (delivery := parse_ack(subject)) is not None}
        if len(accepted) >= job["images"]:
            reasons = [line["message"][:200] for line in job["logs"] if line["level"] == "ERROR"]
            violations.append({"job": job["id"], "images": job["images"], "tasks_with_accepted_results": len(accepted),
                               "processed_when_checked": job["progress"]["processed"], "reason": reasons[-1:]})
    return verdict("not_failed_with_results_in_hand", violations, {"failed_jobs": failed, "redis_wiped": wiped})
