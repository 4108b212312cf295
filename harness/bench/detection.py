"""(a) How long a job with dead tasks stays STARTED before the reaper marks it FAILURE.

Inline path (sweep off, CHAOS_FIX_SWEEP=0): a crash-looping worker reserves every task, never answers, and
polls /tasks/ again after `poll` seconds; each task is delivered max_deliver times. The job becomes
detectable when the last delivery's ack_wait expires: t_dead = (send time of the /tasks/ call that got the
last max_deliver-th delivery) + ack_wait. Latency = finished_at − t_dead.

Sweep path (no worker at all): the tasks are reserved once and abandoned. Nothing ever expires on the
server without a fetcher, so the job becomes detectable as "stuck" once its consumer has been idle for
ack_wait + stuck_grace: t_stuck = (send time of that /tasks/ call) + ack_wait + stuck_grace.
Latency = finished_at − t_stuck; a sweep acts on the second consecutive sighting, so 1–2 sweep intervals.
Send times are taken before the call, so both latencies are upper bounds by the call's few milliseconds.
"""

from __future__ import annotations

import statistics
import time

from fixes.layout import parse_reply_subject
from harness.bench.common import (
    Measurement,
    api,
    job,
    reserve,
    running_stack,
    started_job,
    unix_time,
    wait_final,
)

FINAL = ("SUCCESS", "FAILURE", "REVOKED")


def inline_once(stack, images: int, ack_wait: float, max_deliver: int, poll: float) -> dict:
    with api(stack) as http:
        job_id = started_job(stack, images)
        last_sent: dict[str, tuple[int, float]] = {}  # image -> (deliveries seen, send time of that call)
        first = None
        deadline = time.monotonic() + ack_wait * max_deliver + 30
        while time.monotonic() < deadline:
            sent = time.time()
            for task in reserve(http, job_id, images):  # batch == images: the fetch returns without lingering
                first = first or sent
                last_sent[task["image_id"]] = (parse_reply_subject(task["reply_subject"]).num_delivered, sent)
            data = job(http, job_id)
            if data["status"] in FINAL:
                break
            time.sleep(poll)
        else:
            raise TimeoutError(f"job {job_id} not final: {data['status']}")
    assert data["status"] == "FAILURE", data["status"]
    assert all(n == max_deliver for n, _ in last_sent.values()), last_sent
    dead_at = max(sent for _, sent in last_sent.values()) + ack_wait
    finished = unix_time(data["finished_at"])
    return {"latency": finished - dead_at, "since_first_delivery": finished - first}


def sweep_once(stack, images: int, ack_wait: float, stuck_grace: float, interval: float) -> float:
    with api(stack) as http:
        job_id = started_job(stack, images)
        sent = time.time()
        assert len(reserve(http, job_id, images)) == images
        data = wait_final(http, job_id, timeout=ack_wait + stuck_grace + 3 * interval + 30, poll=0.1)
    assert data["status"] == "FAILURE", data["status"]
    return unix_time(data["finished_at"]) - (sent + ack_wait + stuck_grace)


def run(repeats: int = 3, images: int = 4, ack_wait: float = 1.0, max_deliver: int = 3, poll: float = 0.25,
        sweep_interval: float = 2.0, stuck_grace: float = 1.0) -> list[Measurement]:
    name = "detection"
    inline_settings = {"fixes": "on", "FIX_SWEEP": "0", "ack_wait": ack_wait, "max_deliver": max_deliver,
                       "fetch_timeout": 0.25}
    with running_stack(inline_settings, web_workers=2, beat=False) as stack:
        inline = [inline_once(stack, images, ack_wait, max_deliver, poll) for _ in range(repeats)]
    sweep_settings = {"fixes": "on", "ack_wait": ack_wait, "max_deliver": max_deliver,
                      "sweep_interval": sweep_interval, "stuck_grace": stuck_grace}
    with running_stack(sweep_settings, web_workers=2) as stack:
        sweep = [sweep_once(stack, images, ack_wait, stuck_grace, sweep_interval) for _ in range(repeats)]
    budget = max_deliver * ack_wait
    latencies = [r["latency"] for r in inline]
    totals = [r["since_first_delivery"] for r in inline]
    setup = f"ack_wait {ack_wait:g} s, max_deliver {max_deliver}, poll {poll:g} s, {repeats} jobs"
    return [
        Measurement(name, "inline: t_dead → FAILURE, median", statistics.median(latencies), "s", setup),
        Measurement(name, "inline: t_dead → FAILURE, max", max(latencies), "s", setup),
        Measurement(name, "inline: first delivery → FAILURE / (max_deliver × ack_wait)",
                    statistics.median(totals) / budget, "ratio", f"median; budget {budget:g} s"),
        Measurement(name, "sweep: t_stuck → FAILURE, median", statistics.median(sweep), "s",
                    f"sweep_interval {sweep_interval:g} s, stuck_grace {stuck_grace:g} s, {repeats} jobs"),
        Measurement(name, "sweep: t_stuck → FAILURE, max", max(sweep), "s", ""),
        Measurement(name, "sweep: t_stuck → FAILURE / sweep_interval", statistics.median(sweep) / sweep_interval,
                    "ratio", "median; 1–2 expected (two sightings)"),
    ]
