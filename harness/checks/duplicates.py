"""Each image is published once per attempt, and stored once per attempt, from that attempt's deliveries."""

from __future__ import annotations

from collections.abc import Sequence

from harness.checks.ops import (
    accepted_results,
    calls,
    job_of,
    jobs_of,
    nats_crashes,
    nats_outages,
    sample_errors,
    select,
    successful_starts,
)
from harness.checks.subjects import parse_ack, stream_name
from harness.checks.verdict import Verdict, no_evidence, verdict
from harness.history import Op
from harness.settings import RunSettings


def no_duplicate_tasks(history: Sequence[Op], snapshot: dict) -> Verdict:
    """A job's stream never stores more tasks than the job has images (seed 003: 87,883 for 44k).

    Judged on every look at the stream (the sampler's and the final snapshot's) by `last_seq`, the number of
    messages stored since the stream was created: acks (workqueue retention) do not lower it, so the look
    after a gap covers the gap, unless the stream was deleted within it. Gaps while NATS or the database did
    not answer are tolerated for that reason (counted as `unanswered_reads`). Each task handed out is a look
    too: its reply subject's stream sequence plus the consumer's pending count then is what the stream
    held at that moment (less for a redelivery), e.g. of a stream wiped before the sampler's next tick.
    Unknown: no job; a started job whose stream was never seen; a sampler misread (a `sample-error` other
    than "did not answer").
    """
    jobs = jobs_of(snapshot)
    if not jobs:
        return no_evidence("no_duplicate_tasks", "no job in the final snapshot")
    violations, unknown, seen = [], [], 0
    for job in jobs:
        looks = [(op.time, _stored(op.value["queue"])) for op in select(history, f="sample", job=job["id"])
                 if op.value.get("queue") and op.value["queue"]["stream_exists"]]
        if job.get("queue") and job["queue"]["stream_exists"]:
            looks.append((snapshot.get("taken_at", 0.0), _stored(job["queue"])))
        looks += _handed_out(history, job["id"])
        if not looks:
            if job["attempt"] > 0 or successful_starts(history, job["id"]):
                unknown.append({"job": job["id"], "why": "started, but its stream was never seen"})
            continue
        seen += len(looks)
        at, most = max(looks, key=lambda look: look[1])
        if most > job["images"]:
            violations.append({"job": job["id"], "images": job["images"], "max_stored": most,
                               "duplicates": most - job["images"], "at": round(at, 3)})
    misreads = [e for e in sample_errors(history, unavailable=False) if e.get("source") != "redis"]
    unknown += [{"why": "the sampler misread", **e} for e in misreads]
    return verdict("no_duplicate_tasks", violations, {"observations": seen, "misreads": len(misreads),
                                                      "unanswered_reads": len(sample_errors(history, True))}, unknown)


def _handed_out(history: Sequence[Op], job_id: int) -> list[tuple[float, int]]:
    stream = stream_name(job_id)
    return [(op.time, found.stream_seq + found.pending) for op in select(history, f="reserve", type="ok", job=job_id)
            for subject in op.value.get("reply_subjects") or []
            if (found := parse_ack(subject)) is not None and found.stream == stream]


def _stored(queue: dict) -> int:
    """Messages stored in the stream since it was created (a look without last_seq: what it holds now)."""
    return max(queue.get("last_seq") or 0, queue["messages"])


def no_duplicate_results(history: Sequence[Op], snapshot: dict) -> Verdict:
    """No image has two stored results within one attempt (duplicate detections downstream).

    Judged on the database's result rows: jobs read and no row is a pass (nothing stored, nothing twice).
    No job: unknown.
    """
    if not jobs_of(snapshot):
        return no_evidence("no_duplicate_results", "no job in the final snapshot")
    violations, rows = [], 0
    for job in jobs_of(snapshot):
        rows += job["results"]["rows"]
        for attempt, image, count in job["results"]["duplicates"]:
            violations.append({"job": job["id"], "attempt": attempt, "image": image, "results": count})
    return verdict("no_duplicate_results", violations, {"result_rows": rows})


def no_stale_results(history: Sequence[Op], snapshot: dict) -> Verdict:
    """A result from a delivery handed out before the job was (re)started is not counted in the new attempt.

    The attempt begins at the job's last Start answered 2xx. A job with such a Start is judged, also when
    nothing was handed out before it (no stale delivery exists: a pass the history proves). A job never
    started is skipped; one started (attempt > 0) without a 2xx Start in the history is unknown: when its
    attempt began cannot be told. No job judged: unknown.
    """
    violations, unknown, stale_total, checked, judged = [], [], 0, 0, 0
    for job in jobs_of(snapshot):
        starts = successful_starts(history, job["id"])
        if not starts:
            if job["attempt"] > 0:
                unknown.append({"job": job["id"], "attempt": job["attempt"], "why": "no 2xx Start in the history"})
            continue
        judged += 1
        last_start = max(starts)
        stale = {subject for op in select(history, f="reserve", type="ok", job=job["id"]) if op.time < last_start
                 for subject in op.value.get("reply_subjects", [])}
        stale_total += len(stale)
        for image, subject in job["results"]["subjects"]:
            checked += 1
            if subject in stale:
                violations.append({"job": job["id"], "attempt": job["attempt"], "image": image,
                                   "reply_subject": subject})
    counts = {"jobs_judged": judged, "stale_deliveries": stale_total, "results_checked": checked}
    if not judged and not violations:
        return no_evidence("no_stale_results", "no job with a 2xx Start in the history", counts)
    return verdict("no_stale_results", violations, counts, unknown)


LATE_POST = 1.5  # ack_waits after the hand-out: a POST this late surely came after NATS took the task back


def no_early_redelivery(history: Sequence[Op], snapshot: dict) -> Verdict:
    """A task whose result was accepted is not handed out again within half an ack_wait of the acceptance: the
    accepted result restarts the task's ack_wait (+WPI) while it waits to be stored, so no worker redoes
    work that is done. (Later re-handouts are NATS doing its job when results wait longer than ack_wait.)
    A NATS outage between the acceptance and the re-handout excuses it: a paused server fires its expired
    ack timers before it reads the +WPI waiting in its socket, and a crashed one forgets it."""
    settings = snapshot.get("settings") or {}
    ack_wait = RunSettings.of(settings).ack_wait if "CHAOS_ACK_WAIT" in settings else 0.0  # never a default
    # A result posted when its delivery's ack_wait had already run out (a web restart between the hand-out and
    # the POST) comes too late for the +WPI: NATS has taken the task back, and its redelivery is not early.
    handed = {subject: op.time for op in select(history, f="reserve", type="ok")
              for subject in (op.value or {}).get("reply_subjects", [])}
    # an accepted in_progress heartbeat restarts its tasks' ack_wait as the hand-out did (s07 holds for 4)
    beats = sorted((outcome.time, subject) for invoke, outcome in calls(history, "heartbeat") if outcome.type == "ok"
                   for subject in (invoke.value or {}).get("reply_subjects", []))
    # (stream, consumer, stream seq) -> when the POST that got its result accepted was sent: the +WPI goes out
    # while the POST is answered, so a slow answer (a broker reconnecting) must not move the clock later
    accepted: dict[tuple, float] = {}
    for posted, _, subject in accepted_results(history):
        renewed = max([handed.get(subject, -1.0)] + [at for at, beaten in beats if beaten == subject and at <= posted.time])
        if ack_wait and subject in handed and posted.time >= renewed + LATE_POST * ack_wait:
            continue
        if (ref := parse_ack(subject)) is not None:
            accepted.setdefault((ref.stream, ref.consumer, ref.stream_seq), posted.time)
    if not ack_wait or not accepted:
        return no_evidence("no_early_redelivery", "no result was accepted" if ack_wait else "no ack_wait known",
                           {"accepted": len(accepted)})
    violations, excused = [], 0
    outages = nats_outages(history)
    for op in select(history, f="reserve", type="ok"):
        for subject in (op.value or {}).get("reply_subjects", []):
            ref = parse_ack(subject)
            at = accepted.get((ref.stream, ref.consumer, ref.stream_seq)) if ref else None
            if at is None or not at <= op.time < at + ack_wait / 2:
                continue
            if any(start <= op.time and end >= at for start, end in outages):
                excused += 1  # the +WPI waited in a paused server's socket, or died with its state
                continue
            violations.append({"stream": ref.stream, "seq": ref.stream_seq, "delivered": ref.delivered,
                                   "after_accepted_s": round(op.time - at, 3), "ack_wait_s": ack_wait})
    return verdict("no_early_redelivery", violations, {"accepted": len(accepted), "ack_wait_s": ack_wait,
                                                       "during_a_nats_outage": excused})


def no_replayed_tasks(history: Sequence[Op], snapshot: dict) -> Verdict:
    """A stream message is handed out as a first delivery at most once per attempt. NATS counts redeliveries
    (delivered 2, 3, …); a second first delivery of the same message means a new consumer replayed the stream
    (e.g. re-created with deliver_policy=all after the old one vanished): work already done is handed out again.
    Attempts begin at each 2xx Start (a re-created stream numbers its messages from 1 again). A crash of
    nats-server between the two hand-outs excuses the replay: the server may lose the consumer state it had
    not synced, and hands those messages out again (at least once; results_counted_once judges the cost)."""
    first: dict[tuple, float] = {}  # (job, attempt window, stream, consumer, seq) -> when first handed out
    first_asked: dict[tuple, float] = {}  # … and when that hand-out was asked for
    violations, handed, excused = [], 0, 0
    crashes = nats_crashes(history)
    starts = {job["id"]: successful_starts(history, job["id"]) for job in jobs_of(snapshot)}
    for asked, op in calls(history, "reserve"):  # the server hands a batch out between the ask and the answer
        if op.type != "ok":
            continue
        job_id = job_of(op)
        window = sum(1 for at in starts.get(job_id, []) if at <= op.time)
        for subject in (op.value or {}).get("reply_subjects", []):
            ref = parse_ack(subject)
            if ref is None or ref.delivered != 1:
                continue
            handed += 1
            key = (job_id, window, ref.stream, ref.consumer, ref.stream_seq)  # a consumer per attempt: its own key
            if key in first and any(first_asked[key] <= at <= op.time for at in crashes):
                excused += 1
            elif key in first:
                violations.append({"job": job_id, "stream": ref.stream, "seq": ref.stream_seq, "consumer": ref.consumer,
                                   "first_at": round(first[key], 3), "again_at": round(op.time, 3)})
            first.setdefault(key, op.time)
            first_asked.setdefault(key, asked.time)
    if not handed:
        return no_evidence("no_replayed_tasks", "no task was handed out", {"first_deliveries": 0})
    return verdict("no_replayed_tasks", violations, {"first_deliveries": handed, "replayed_after_a_crash": excused})
