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

On Antenna (`run_antenna`, `--target antenna:PATH`): the two paths with the fixes' PR, and the same two
situations on Antenna HEAD, which has no inline check and no sweep of its own: its `jobs_health_check` (beat)
fails the job's unprocessed images once the job has not been updated for Job.STALLED_JOBS_MAX_MINUTES (over half
failed: FAILURE). Both at the same compressed timings; HEAD's two constants compressed as the Antenna matrix
compresses them (CHAOS_STALLED_MINUTES, CHAOS_HEALTH_CHECK_INTERVAL). For HEAD the job's last update
(jobs_job.updated_at, its idle clock) → FAILURE is recorded too. In the fixes' runs HEAD's health check is kept
out of the way (beat off for the inline path; for the sweep path its production constants) so that each
latency is the fixes' own; the failure reason in the job's log says which check failed it.
"""

from __future__ import annotations

import contextlib
import statistics
import time

from fixes.layout import parse_reply_subject
from harness.bench.common import (
    Measurement,
    api,
    job,
    job_record,
    reserve,
    running_stack,
    running_target,
    started_job,
    started_job_on,
    unix_time,
    updated_unix,
    wait_final,
)

FINAL = ("SUCCESS", "FAILURE", "REVOKED")


def _start(stack, images: int) -> int:
    return started_job(stack, images) if stack.kind == "sandbox" else started_job_on(stack, images)


def _idle(finished: float, updates: set[float]) -> float | None:
    """The job's last update → FAILURE. Antenna's health check saves the job's progress a moment before it sets
    FAILURE, so updates within a second of finished_at are its own; the one before them is the last real one."""
    earlier = [u for u in updates if u < finished - 1.0]
    return finished - max(earlier) if earlier else None


def _finished(stack, job_id: int, data: dict) -> float:
    """finished_at in unix seconds: from the sandbox's API, from Antenna's database (its API answers naive local
    time)."""
    if stack.kind == "sandbox":
        return unix_time(data["finished_at"])
    return job_record(stack, job_id)["finished_at"]


def inline_once(stack, images: int, ack_wait: float, max_deliver: int, poll: float, wait: float = 30) -> dict:
    """`wait`: seconds beyond the delivery budget to wait for FAILURE. The result's "idle" is the job's last
    update (updated_at) → FAILURE; it is only read where it is the detecting clock (Antenna HEAD)."""
    with api(stack) as http:
        job_id = _start(stack, images)
        last_sent: dict[str, tuple[int, float]] = {}  # image -> (deliveries seen, send time of that call)
        first, updates = None, set()
        deadline = time.monotonic() + ack_wait * max_deliver + wait
        while time.monotonic() < deadline:
            sent = time.time()
            for task in reserve(http, job_id, images):  # batch == images: the fetch returns without lingering
                first = first or sent
                last_sent[task["image_id"]] = (parse_reply_subject(task["reply_subject"]).num_delivered, sent)
            if stack.kind != "sandbox":
                updates.add(updated_unix(stack, job_id))
            data = job(http, job_id)
            if data["status"] in FINAL:
                break
            time.sleep(poll)
        else:
            raise TimeoutError(f"job {job_id} not final: {data['status']}")
    assert data["status"] == "FAILURE", data["status"]
    unseen = sum(max_deliver - n for n, _ in last_sent.values())  # Antenna HEAD: lost to a timed-out fetch
    assert unseen == 0 or stack.kind != "sandbox", last_sent
    dead_at = max(sent for _, sent in last_sent.values()) + ack_wait
    finished = _finished(stack, job_id, data)
    return {"latency": finished - dead_at, "since_first_delivery": finished - first, "job": job_id,
            "idle": _idle(finished, updates), "unseen": unseen}


def sweep_once(stack, images: int, ack_wait: float, stuck_grace: float, interval: float,
               wait: float = 30) -> float | dict:
    """The sandbox: t_stuck → FAILURE in seconds. Other targets: a dict with it ("latency"), the job and its last
    update → FAILURE ("idle")."""
    with api(stack) as http:
        job_id = _start(stack, images)
        sent = time.time()
        assert len(reserve(http, job_id, images)) == images
        if stack.kind == "sandbox":
            data = wait_final(http, job_id, timeout=ack_wait + stuck_grace + 3 * interval + wait, poll=0.1)
        else:
            updates, deadline = set(), time.monotonic() + ack_wait + stuck_grace + 3 * interval + wait
            while (data := job(http, job_id))["status"] not in FINAL:
                updates.add(updated_unix(stack, job_id))
                if time.monotonic() > deadline:
                    raise TimeoutError(f"job {job_id} still {data['status']}")
                time.sleep(0.1)
    assert data["status"] == "FAILURE", data["status"]
    finished = _finished(stack, job_id, data)
    latency = finished - (sent + ack_wait + stuck_grace)
    if stack.kind == "sandbox":
        return latency
    return {"latency": latency, "job": job_id, "idle": _idle(finished, updates)}


SWEEP_MODES = {"next pass confirms": 0.0, "confirming look": None}  # confirm_delay: 0, and the default


def run(repeats: int = 3, images: int = 4, ack_wait: float = 1.0, max_deliver: int = 3, poll: float = 0.25,
        sweep_interval: float = 2.0, stuck_grace: float = 1.0) -> list[Measurement]:
    """The sweep path runs on two stacks, one per SWEEP_MODES entry (the confirming look of the same pass, and
    confirm_delay 0: the next pass confirms, as before), one job on each in turn."""
    name = "detection"
    inline_settings = {"fixes": "on", "FIX_SWEEP": "0", "ack_wait": ack_wait, "max_deliver": max_deliver,
                       "fetch_timeout": 0.25}
    with running_stack(inline_settings, web_workers=2, beat=False) as stack:
        inline = [inline_once(stack, images, ack_wait, max_deliver, poll) for _ in range(repeats)]
    sweep_settings = {"fixes": "on", "ack_wait": ack_wait, "max_deliver": max_deliver,
                      "sweep_interval": sweep_interval, "stuck_grace": stuck_grace}
    sweep: dict[str, list[float]] = {mode: [] for mode in SWEEP_MODES}
    with contextlib.ExitStack() as stacks:
        started = {mode: stacks.enter_context(running_stack(
            {**sweep_settings, **({} if delay is None else {"confirm_delay": delay})}, web_workers=2))
            for mode, delay in SWEEP_MODES.items()}
        for _ in range(repeats):
            for mode, stack in started.items():
                sweep[mode].append(sweep_once(stack, images, ack_wait, stuck_grace, sweep_interval))
    budget = max_deliver * ack_wait
    latencies = [r["latency"] for r in inline]
    totals = [r["since_first_delivery"] for r in inline]
    setup = f"ack_wait {ack_wait:g} s, max_deliver {max_deliver}, poll {poll:g} s, {repeats} jobs"
    rows = [
        Measurement(name, "inline: t_dead → FAILURE, median", statistics.median(latencies), "s", setup),
        Measurement(name, "inline: t_dead → FAILURE, max", max(latencies), "s", setup),
        Measurement(name, "inline: first delivery → FAILURE / (max_deliver × ack_wait)",
                    statistics.median(totals) / budget, "ratio", f"median; budget {budget:g} s"),
    ]
    # The stuck rule also wants the held tasks past ack_wait × max_deliver (assess._held_past_deadline): from
    # t_stuck the job is detectable that much later
    held = ack_wait * max_deliver - ack_wait
    for mode, values in sweep.items():
        rows += [
            Measurement(name, f"sweep ({mode}): t_stuck → FAILURE, median", statistics.median(values), "s",
                        f"sweep_interval {sweep_interval:g} s, stuck_grace {stuck_grace:g} s, {repeats} jobs"),
            Measurement(name, f"sweep ({mode}): t_stuck → FAILURE, max", max(values), "s", ""),
            Measurement(name, f"sweep ({mode}): t_stuck → FAILURE / sweep_interval",
                        statistics.median(values) / sweep_interval, "ratio", "median"),
            Measurement(name, f"sweep ({mode}): detectable → FAILURE / sweep_interval, median",
                        (statistics.median(values) - held) / sweep_interval, "ratio",
                        f"detectable = t_stuck + {held:g} s (held tasks: ack_wait × max_deliver + stuck_grace)"),
            Measurement(name, f"sweep ({mode}): detectable → FAILURE / sweep_interval, max",
                        (max(values) - held) / sweep_interval, "ratio", ""),
        ]
    return rows


# --- on Antenna -------------------------------------------------------------------------------------------

HEAD_CHECK = "jobs_health_check: marked"  # the log line of HEAD's health check failing a job's lost images


def _failed_by(target, job_id: int) -> str:
    logs = [line["message"] for line in job_record(target, job_id)["logs"]]
    return "HEAD's health check" if any(HEAD_CHECK in m for m in logs) else "the fixes"


def run_antenna(spec, repeats: int = 3, images: int = 4, ack_wait: float = 1.0, max_deliver: int = 3,
                poll: float = 0.25, sweep_interval: float = 2.0, stuck_grace: float = 1.0,
                stalled_minutes: float = 0.1, health_check_interval: int = 2) -> list[Measurement]:
    """Antenna HEAD's detection next to the fixes', same ack_wait, max_deliver, worker and poll."""
    name, rows = "detection", []
    common = {"ack_wait": ack_wait, "max_deliver": max_deliver, "fetch_timeout": 0.25}
    head_knobs = {"STALLED_MINUTES": stalled_minutes, "HEALTH_CHECK_INTERVAL": health_check_interval}
    idle, tick = stalled_minutes * 60, health_check_interval
    head_wait = idle + 3 * tick + 30
    with running_target(spec, {**common, **head_knobs, "fixes": "off"}, web_workers=2) as target:
        head_loop = [inline_once(target, images, ack_wait, max_deliver, poll, wait=head_wait)
                     for _ in range(repeats)]
        head_idle = [sweep_once(target, images, ack_wait, stuck_grace, sweep_interval, wait=head_wait)
                     for _ in range(repeats)]
        head_by = {_failed_by(target, r["job"]) for r in head_loop + head_idle}
    with running_target(spec, {**common, "fixes": "on", "FIX_SWEEP": "0"}, web_workers=2, beat=False) as target:
        inline = [inline_once(target, images, ack_wait, max_deliver, poll) for _ in range(repeats)]
        inline_by = {_failed_by(target, r["job"]) for r in inline}
    sweep_settings = {**common, "fixes": "on", "sweep_interval": sweep_interval, "stuck_grace": stuck_grace,
                      "STALLED_MINUTES": 10, "HEALTH_CHECK_INTERVAL": 900}  # HEAD's check at production values
    with running_target(spec, sweep_settings, web_workers=2) as target:
        sweep = [sweep_once(target, images, ack_wait, stuck_grace, sweep_interval) for _ in range(repeats)]
        sweep_by = {_failed_by(target, r["job"]) for r in sweep}
    settings = f"ack_wait {ack_wait:g} s, max_deliver {max_deliver}, {repeats} jobs"
    head_note = f"idle rule {idle:g} s, health check every {tick:g} s; failed by {', '.join(sorted(head_by))}"

    def add(label: str, results: list[dict], ref: str, note: str, idle_clock: bool = False) -> None:
        latencies = [r["latency"] for r in results]
        rows.extend([
            Measurement(name, f"[antenna] {label}: {ref} → FAILURE, median", statistics.median(latencies), "s",
                        note),
            Measurement(name, f"[antenna] {label}: {ref} → FAILURE, max", max(latencies), "s", settings),
            Measurement(name, f"[antenna] {label}: {ref} → FAILURE / ack_wait",
                        statistics.median(latencies) / ack_wait, "ack_waits", "median")])
        if idle_clock:
            idles = [r["idle"] for r in results if r["idle"] is not None]
            rows.extend([
                Measurement(name, f"[antenna] {label}: last job update → FAILURE, median",
                            statistics.median(idles), "s",
                            f"expected idle rule + 0–1 health-check interval ({idle:g}–{idle + tick:g} s)"),
                Measurement(name, f"[antenna] {label}: last job update → FAILURE, max", max(idles), "s", "")])

    unseen = sum(r["unseen"] for r in head_loop)
    add("HEAD, crash-looping worker", head_loop, "t_dead", head_note + (
        f"; {unseen} last deliveries never reached the worker (t_dead from the last one seen)" if unseen else ""),
        idle_clock=True)
    add("HEAD, no worker", head_idle, "t_stuck", head_note, idle_clock=True)
    add("fixes, inline check", inline, "t_dead", f"poll {poll:g} s, sweep off; failed by {', '.join(inline_by)}")
    add("fixes, sweep", sweep, "t_stuck", f"sweep_interval {sweep_interval:g} s, stuck_grace {stuck_grace:g} s; "
                                          f"failed by {', '.join(sweep_by)}")
    return rows
