"""(b) What the inline check adds to an empty /tasks/ call.

Three stacks side by side: the check off (CHAOS_FIX_INLINE_REAPER=0), the check on every empty call
(CHAOS_INLINE_RECHECK=0), and the check as shipped (a job found healthy is looked at again after
inline_recheck, a quarter of ack_wait). On each, one job whose tasks are all reserved and held (ack_wait
300 s), so every further /tasks/ call hands out nothing and — with the check on — may run it (one queue
snapshot: consumer_info + stream_info at once, plus the attempt's published count).
The calls alternate between the two stacks so that both see the same machine load. Every empty call also
waits CHAOS_FETCH_TIMEOUT for NATS (the same on both); the difference of the medians is the check.

On Antenna (`run_antenna`, `--target antenna:PATH`): three targets, HEAD, the fixes' PR with the check off, and
the fixes' PR.
"""

from __future__ import annotations

import contextlib
import time

from harness.bench.common import (
    Measurement,
    api,
    percentile,
    reserve,
    running_stack,
    running_target,
    started_job,
    started_job_on,
)

FETCH_TIMEOUT = 0.05


SANDBOX_MODES = {  # label -> the inline check's settings
    "off": {"FIX_INLINE_REAPER": "0"},
    "every call": {"FIX_INLINE_REAPER": "1", "INLINE_RECHECK": "0"},  # the look itself, on every empty call
    "default": {"FIX_INLINE_REAPER": "1"},  # a job found healthy is looked at again after inline_recheck
}


def _empty_call_ms(targets: dict, start, images: int, calls: int, warmup: int) -> dict[str, list[float]]:
    """Per label, the milliseconds of `calls` empty /tasks/ calls on its running target: one job each, started by
    `start(target, images)`, whose tasks are all reserved and held; `warmup` calls first (connections, the NATS
    bridge, pull subscriptions), then the calls alternating between the targets so all see the same load."""
    timings: dict[str, list[float]] = {label: [] for label in targets}
    with contextlib.ExitStack() as clients_open:
        clients = {label: clients_open.enter_context(api(target)) for label, target in targets.items()}
        jobs = {}
        for label, target in targets.items():
            jobs[label] = start(target, images)
            assert len(reserve(clients[label], jobs[label], images)) == images  # held: nothing left to hand out
        for label in targets:
            for _ in range(warmup):
                reserve(clients[label], jobs[label], 16)
        for i in range(calls * len(targets)):
            label = list(targets)[i % len(targets)]
            began = time.perf_counter()
            handed = reserve(clients[label], jobs[label], 16)
            timings[label].append(time.perf_counter() - began)
            assert handed == [], "a task was handed out: the call was not empty"
    return {label: [t * 1000 for t in values] for label, values in timings.items()}


def run(calls: int = 300, images: int = 4) -> list[Measurement]:
    base = {"fixes": "on", "FIX_SWEEP": "0", "ack_wait": 300, "max_deliver": 3, "fetch_timeout": FETCH_TIMEOUT}
    with contextlib.ExitStack() as stacks:
        targets = {mode: stacks.enter_context(running_stack({**base, **settings}, web_workers=1, beat=False))
                   for mode, settings in SANDBOX_MODES.items()}
        ms = _empty_call_ms(targets, started_job, images, calls, warmup=10)
    name, note = "tasks_call", f"{calls} empty calls each, fetch_timeout {FETCH_TIMEOUT:g} s, interleaved"
    rows = []
    for mode in SANDBOX_MODES:
        rows += [Measurement(name, f"empty /tasks/ p{q}, inline check {mode}", percentile(ms[mode], q), "ms", note)
                 for q in (50, 99)]
    for mode, why in (("every call", "the look itself (inline_recheck 0)"),
                      ("default", "as shipped: one look per inline_recheck (ack_wait/4) per process")):
        rows += [Measurement(name, f"inline check cost, {mode} (p{q} − p{q} off)",
                             percentile(ms[mode], q) - percentile(ms["off"], q), "ms", why) for q in (50, 99)]
    return rows


# --- on Antenna -------------------------------------------------------------------------------------------

HEAD_FETCH_TIMEOUT = 0.5  # Antenna HEAD's /tasks/ waits this long on NATS (hard-coded in ami/jobs/views.py)
MODES = {  # label -> settings beside the common ones
    "HEAD (fixes off)": {"fixes": "off"},
    "fixes on, inline check off": {"fixes": "on", "FIX_INLINE_REAPER": "0"},
    "fixes on": {"fixes": "on"},
}


def run_antenna(spec, calls: int = 50, images: int = 4) -> list[Measurement]:
    """The same method on Antenna: HEAD, the fixes' PR with the inline check switched off, and the fixes' PR, side
    by side, each with one job whose tasks are all reserved and held; the empty calls alternate between the three.
    The fixes wait on NATS as long as HEAD does (NATS_FETCH_TIMEOUT = 0.5 s), so the differences of the medians
    are what each adds to an empty call: the fixes' whole /tasks/ path, and the inline check alone."""
    base = {"FIX_SWEEP": "0", "ack_wait": 300, "max_deliver": 3, "fetch_timeout": HEAD_FETCH_TIMEOUT}
    with contextlib.ExitStack() as stacks:
        targets = {label: stacks.enter_context(running_target(spec, {**base, **settings}, web_workers=1, beat=False))
                   for label, settings in MODES.items()}
        ms = _empty_call_ms(targets, started_job_on, images, calls, warmup=5)
    name = "tasks_call"
    note = f"Antenna; {calls} empty calls each, {HEAD_FETCH_TIMEOUT:g} s on NATS, interleaved"
    rows = []
    for label in MODES:
        rows += [Measurement(name, f"[antenna] empty /tasks/ p{q}, {label}", percentile(ms[label], q), "ms", note)
                 for q in (50, 99)]
    head, unchecked, fixed = (ms[label] for label in MODES)
    for q in (50, 99):
        rows += [Measurement(name, f"[antenna] fixes on − HEAD, p{q}",
                             percentile(fixed, q) - percentile(head, q), "ms", "the fixes' whole /tasks/ path"),
                 Measurement(name, f"[antenna] inline check cost (on − off), p{q}",
                             percentile(fixed, q) - percentile(unchecked, q), "ms", "the check alone")]
    return rows
