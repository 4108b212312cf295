"""Each image is published once per attempt, and stored once per attempt, from that attempt's deliveries."""

from __future__ import annotations

from collections.abc import Sequence

from harness.checks.ops import jobs_of, select, successful_starts
from harness.checks.verdict import Verdict, verdict
from harness.history import Op


def no_duplicate_tasks(history: Sequence[Op], snapshot: dict) -> Verdict:
    """A job's stream never holds more messages than the job has images (seed 003: 87,883 for 44k)."""
    violations, unknown, seen = [], [], 0
    for job in jobs_of(snapshot):
        looks = [(op.time, op.value["queue"]["messages"]) for op in select(history, f="sample", job=job["id"])
                 if op.value.get("queue") and op.value["queue"]["stream_exists"]]
        if job.get("queue") and job["queue"]["stream_exists"]:
            looks.append((snapshot.get("taken_at", 0.0), job["queue"]["messages"]))
        if not looks:
            if job.get("queue") is None:
                unknown.append({"job": job["id"], "why": "NATS never answered"})
            continue
        seen += len(looks)
        at, most = max(looks, key=lambda look: look[1])
        if most > job["images"]:
            violations.append({"job": job["id"], "images": job["images"], "max_messages": most,
                               "duplicates": most - job["images"], "at": round(at, 3)})
    return verdict("no_duplicate_tasks", violations, {"observations": seen}, unknown)


def no_duplicate_results(history: Sequence[Op], snapshot: dict) -> Verdict:
    """No image has two stored results within one attempt (duplicate detections downstream)."""
    violations, rows = [], 0
    for job in jobs_of(snapshot):
        rows += job["results"]["rows"]
        for attempt, image, count in job["results"]["duplicates"]:
            violations.append({"job": job["id"], "attempt": attempt, "image": image, "results": count})
    return verdict("no_duplicate_results", violations, {"result_rows": rows})


def no_stale_results(history: Sequence[Op], snapshot: dict) -> Verdict:
    """A result from a delivery handed out before the job was (re)started is not counted in the new attempt."""
    violations, stale_total, checked = [], 0, 0
    for job in jobs_of(snapshot):
        starts = successful_starts(history, job["id"])
        if not starts:
            continue
        last_start = max(starts)
        stale = {subject for op in select(history, f="reserve", type="ok", job=job["id"]) if op.time < last_start
                 for subject in op.value.get("reply_subjects", [])}
        stale_total += len(stale)
        for image, subject in job["results"]["subjects"]:
            checked += 1
            if subject in stale:
                violations.append({"job": job["id"], "attempt": job["attempt"], "image": image,
                                   "reply_subject": subject})
    return verdict("no_stale_results", violations, {"stale_deliveries": stale_total, "results_checked": checked})
