"""(d) End-to-end task throughput through the worker HTTP API, as a share of raw NATS pull throughput.

Both are measured in the same run against the same nats-server:
* raw NATS: `messages` tasks-sized messages published to a stream laid out like a job's (limits retention,
  file storage), drained by one nats-py pull subscription with fetch(batch) + ack per message;
* HTTP: one job of `images` images drained by `concurrency` asyncio workers (httpx), each looping
  POST /tasks/ {"batch_size": 16} → POST /result/ with one success result per task. "HTTP" throughput ends
  when the last result POST has returned; "end to end" ends at the job's finished_at (SUCCESS), i.e. when
  Celery has stored, counted and acked every result.
Evidence of what limits it: CPU seconds per stack process over the swarm, the Celery queue length in Redis,
and the latency of each call kind.

On Antenna (`run_antenna`, `--target antenna:PATH`): Antenna HEAD (fixes off), Antenna with the fixes' PR
(fixes on) and the sandbox (fixes off) are booted side by side in one run, at production timings (ack_wait
300 s, max_deliver 2, /tasks/ waiting 0.5 s on NATS as HEAD does, max_ack_pending 1000), and, after a one-image
warm-up job each, drain one job of `images` each with the same swarm, in `pairs` rounds: HEAD and fixes
alternating which goes first, then the sandbox. Raw NATS is measured on Antenna's nats-server (2.10) and on the sandbox's. Then, on two more Antenna
targets at a short ack_wait (`short_ack_wait`), the swarm keeps polling until the job is final, and the
tasks handed out again, the deliveries lost (never seen by a worker) and the images stored twice are counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import sys
import threading
import time

import httpx
import nats
import psutil
from nats.js import api as js_api

from harness.bench.common import (
    Measurement,
    api,
    job,
    job_record,
    percentile,
    running_stack,
    running_target,
    started_job,
    started_job_on,
    unix_time,
)
from harness.bench.swarm import FINAL, Swarm
from harness.targets import TargetSpec
from harness.workers.protocol import success_result

PAYLOAD = json.dumps({"id": "123-4567", "image_id": "4567", "job_id": 123, "attempt": 1,
                      "image_url": "http://127.0.0.1:8000/media/images/4567.gif"}).encode()


async def raw_nats(url: str, messages: int, batch: int, replicas: int = 1) -> float:
    """Messages per second drained with fetch(batch) + ack, one subscription (one process). `url` may list
    a cluster's nodes, comma-separated."""
    from fixes.jetstream.queue import servers

    nc = await nats.connect(servers(url))
    js = nc.jetstream()
    stream = f"bench_raw_{batch}"
    await js.add_stream(js_api.StreamConfig(name=stream, subjects=[f"{stream}.tasks"], num_replicas=replicas))
    for _ in range(messages):
        await js.publish_async(f"{stream}.tasks", PAYLOAD)
    await js.publish_async_completed()
    await js.add_consumer(stream, js_api.ConsumerConfig(durable_name="raw", ack_policy=js_api.AckPolicy.EXPLICIT,
                                                        ack_wait=30, max_ack_pending=messages))
    sub = await js.pull_subscribe_bind("raw", stream=stream)
    done, began = 0, time.perf_counter()
    while done < messages:
        for msg in await sub.fetch(batch, timeout=5):
            await msg.ack()
            done += 1
    await nc.flush()
    seconds = time.perf_counter() - began
    await js.delete_stream(stream)
    await nc.close()
    return messages / seconds


class CpuMeter:
    """CPU seconds (user + system) used by each stack service, with its children, between start and stop."""

    def __init__(self, stack):
        self.stack, self.used = stack, {}

    def _sample(self) -> dict[str, float]:
        totals = {"client (this process)": _cpu(psutil.Process())}
        for name, service in self.stack.services().items():
            totals[name] = sum(_cpu(pid) for pid in [service.pid, *service.child_pids()] if pid)
        return totals

    def __enter__(self):
        self._before, self._began = self._sample(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        after, self.wall = self._sample(), time.perf_counter() - self._began
        self.used = {name: after[name] - self._before.get(name, 0.0) for name in after}


def _cpu(process: psutil.Process | int) -> float:
    try:  # a child (a PostgreSQL backend, a Celery child) may end between listing and reading it
        times = (psutil.Process(process) if isinstance(process, int) else process).cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return times.user + times.system


class QueueSampler(threading.Thread):
    """Largest length of the Celery queue seen in Redis (pending result tasks: one per /result/ POST)."""

    def __init__(self, redis_server):
        super().__init__(daemon=True)
        self.redis, self.max_length, self.halt = redis_server.client(), 0, threading.Event()

    def run(self):
        while not self.halt.wait(0.1):
            self.max_length = max(self.max_length, self.redis.llen("celery"))


VARIANTS = {  # name -> CHAOS_MAX_ACK_PENDING
    "Antenna's max_ack_pending 1000": 1000,
    # results wait in the Celery queue unacked: a large window lets /tasks/ run ahead of Celery
    "max_ack_pending 100000": 100000,
}


def drain_job(stack, images: int, concurrency: int) -> dict:
    job_id = started_job(stack, images)
    queue = QueueSampler(stack.redis)
    queue.start()
    with CpuMeter(stack) as cpu:
        swarm = Swarm(stack.api_url, stack.token, job_id, images, concurrency, success_result)
        http_seconds = asyncio.run(swarm.run())
        with httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Token {stack.token}"}) as http:
            processed = job(http, job_id)["progress"]["stages"][1]["params"][0]["value"]
            final = _wait_success(http, job_id)
    queue.halt.set()
    return {"http_rate": images / http_seconds,
            "e2e_rate": images / (unix_time(final["finished_at"]) - swarm.began_unix),
            "processed_at_http_end": processed, "queue_max": queue.max_length,
            "latencies": swarm.latencies, "cpu": cpu.used, "wall": cpu.wall}


def run(images: int = 10000, concurrency: int = 8, messages: int = 20000) -> list[Measurement]:
    name, rows, raw16 = "throughput", [], None
    for variant, max_ack_pending in VARIANTS.items():
        settings = {"fixes": "on", "ack_wait": 60, "max_deliver": 3, "fetch_timeout": 0.25,
                    "max_ack_pending": max_ack_pending}
        with running_stack(settings, web_workers=3) as stack:
            if raw16 is None:
                raw16 = asyncio.run(raw_nats(stack.nats.url, messages, 16))
                raw100 = asyncio.run(raw_nats(stack.nats.url, messages, 100))
                rows += [Measurement(name, "raw NATS fetch(16)+ack", raw16, "msg/s",
                                     f"{messages} messages, 1 subscription"),
                         Measurement(name, "raw NATS fetch(100)+ack", raw100, "msg/s", "")]
            result = drain_job(stack, images, concurrency)
        rows += _rows(name, variant, result, raw16, f"{images} images, {concurrency} workers, batch 16")
    return rows


def _rows(name: str, variant: str, r: dict, raw16: float, note: str) -> list[Measurement]:
    rows = [Measurement(name, f"[{variant}] HTTP reserve+result", r["http_rate"], "tasks/s",
                        f"{note}; until the last result POST returned"),
            Measurement(name, f"[{variant}] end to end", r["e2e_rate"], "tasks/s", "until the job's finished_at"),
            Measurement(name, f"[{variant}] HTTP / raw fetch(16)", r["http_rate"] / raw16, "ratio", "target ≥ 0.25"),
            Measurement(name, f"[{variant}] end to end / raw fetch(16)", r["e2e_rate"] / raw16, "ratio",
                        "target ≥ 0.25"),
            Measurement(name, f"[{variant}] processed when the last POST returned", r["processed_at_http_end"],
                        "images", ""),
            Measurement(name, f"[{variant}] Celery queue length, max", r["queue_max"], "tasks",
                        "result tasks waiting (one per /result/ POST)")]
    for kind, latencies in sorted(r["latencies"].items()):
        rows.append(Measurement(name, f"[{variant}] {kind} p50", percentile(latencies, 50) * 1000, "ms",
                                f"p99 {percentile(latencies, 99) * 1000:.0f} ms, {len(latencies)} calls"))
    for service, seconds in sorted(r["cpu"].items(), key=lambda item: -item[1]):
        if seconds >= 0.05 * r["wall"]:
            rows.append(Measurement(name, f"[{variant}] CPU {service}", seconds / r["wall"], "cores",
                                    f"{seconds:.1f} CPU-s over {r['wall']:.1f} s"))
    return rows


def _wait_success(http: httpx.Client, job_id: int, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while (data := job(http, job_id))["status"] != "SUCCESS":
        if time.monotonic() > deadline or data["status"] in ("FAILURE", "REVOKED"):
            raise AssertionError(f"job {job_id} ended {data['status']}")
        time.sleep(0.1)
    return data


# --- on Antenna -------------------------------------------------------------------------------------------

# Production's timings: Antenna's NATS_TASK_TTR and NATS_MAX_DELIVER, the 0.5 s HEAD's /tasks/ waits on NATS,
# the consumer's max_ack_pending; the health check every 15 min with its 10 min idle rule, the fixes' sweep every
# 60 s. The periodic checks then cost what they cost in production, and no result waits in Celery past ack_wait.
ANTENNA_PRODUCTION = {"ack_wait": 300, "max_deliver": 2, "fetch_timeout": 0.5, "max_ack_pending": 1000,
                      "sweep_interval": 60, "HEALTH_CHECK_INTERVAL": 900, "STALLED_MINUTES": 10}
SAVED = "Successfully saved results for job"  # Antenna's job-log line each time it stores a result
LABELS = {"off": "HEAD", "on": "fixes", "sandbox": "sandbox (fixes off)"}


def drain_on(target, images: int, concurrency: int, until_final: bool = False, timeout: float = 300,
             still: float = 30) -> dict:
    """One job of `images` drained by the swarm on any target; the end-to-end rate ends at the finished_at the
    target stored. A job that is not final within `timeout`, or whose status and progress stop changing for
    `still` seconds once the swarm is done, is returned as {"stalled": why} with what the target recorded, so
    the other rounds still count."""
    job_id = started_job_on(target, images)
    swarm = Swarm(target.api_url, target.token, job_id, images, concurrency, success_result,
                  until_final=until_final, timeout=timeout)
    try:
        with CpuMeter(target) as cpu:
            http_seconds = asyncio.run(swarm.run())
            with api(target) as http:
                deadline, seen, changed = time.monotonic() + timeout, None, time.monotonic()
                while (data := job(http, job_id))["status"] not in FINAL:
                    now = time.monotonic()
                    if (data["status"], data["progress"]) != seen:
                        seen, changed = (data["status"], data["progress"]), now
                    if now > deadline or now - changed > still:
                        raise TimeoutError(f"still {data['status']}, nothing changed for {now - changed:.0f} s")
                    time.sleep(0.1)
    except TimeoutError as exc:
        return {"job": job_id, "stalled": _stalled(target, job_id, swarm, f"{exc or 'the swarm timed out'}")}
    record = job_record(target, job_id)
    if record["status"] != "SUCCESS":
        return {"job": job_id, "stalled": f"job {job_id} ended {record['status']}"}
    return {"job": job_id, "http_rate": images / http_seconds,
            "e2e_rate": images / (record["finished_at"] - swarm.began_unix),
            "handed_out": swarm.handed_out, "redelivered": swarm.redelivered, "lost": swarm.lost,
            "posted": swarm.posted, "stored_twice": len(record["results"]["duplicates"]),
            "saved": sum(line["message"].startswith(SAVED) for line in record["logs"]),
            "cpu_per_task": {name: seconds / images for name, seconds in cpu.used.items()},
            "latencies": swarm.latencies}


def _stalled(target, job_id: int, swarm: Swarm, why: str) -> str:
    """What the target recorded for a job that did not complete."""
    record = job_record(target, job_id)
    saved = sum(line["message"].startswith(SAVED) for line in record["logs"])
    errors = [line["message"][:160] for line in record["logs"] if line["level"] == "ERROR"][:2]
    return (f"job {job_id}: {why}; {swarm.posted} of {swarm.images} results posted, {swarm.lost} deliveries lost; "
            f"{saved} results saved, for {record['results']['distinct_images']} images; progress "
            f"{record['progress']}; errors logged: {errors}")


def _pairs(targets: dict, pairs: int, drain, tag: str) -> dict[str, list[dict]]:
    """`pairs` rounds: HEAD and fixes alternate which goes first; any other target ("sandbox") goes last. Each
    target first runs a job of one image with one worker: the first results on a fresh database create the
    pipeline's taxa, and on Antenna HEAD two results doing that at once collide (a unique-key error; the result
    is not acked and waits for its ack_wait), which a database in use never sees."""
    for target in targets.values():
        drain_on(target, 1, 1)
    drains: dict[str, list[dict]] = {mode: [] for mode in targets}
    for i in range(pairs):
        order = ["off", "on"] if i % 2 == 0 else ["on", "off"]
        for mode in order + [m for m in targets if m not in order]:
            result = drain(targets[mode])
            drains[mode].append(result)
            said = result.get("stalled") or f"{result['e2e_rate']:.2f} tasks/s end to end"
            print(f"throughput ({tag}) pair {i + 1}, {LABELS[mode]}: {said}", file=sys.stderr)
    return drains


def run_antenna(spec: TargetSpec, images: int = 64, concurrency: int = 8, pairs: int = 4,
                messages: int = 20000, short_ack_wait: float = 3.0, short_pairs: int = 1,
                celery_concurrency: int = 4) -> list[Measurement]:
    """Antenna HEAD vs Antenna with the fixes vs the sandbox, at production timings, in the same run; then HEAD vs
    the fixes at a short ack_wait with workers polling until the job is final. celery_concurrency: the prefork
    processes of Antenna's Celery worker (the harness's default 4; the sandbox keeps its own 2)."""
    name, rows = "throughput", []
    antenna = {"celery_concurrency": celery_concurrency}
    with contextlib.ExitStack() as stacks:
        targets = {mode: stacks.enter_context(running_target(spec, {**ANTENNA_PRODUCTION, "fixes": mode}, **antenna))
                   for mode in ("off", "on")}
        # the sandbox with Antenna's gunicorn layout (2 processes × 4 threads); its Celery runs 2 processes
        sandbox = {**ANTENNA_PRODUCTION, "fixes": "off"}
        targets["sandbox"] = stacks.enter_context(running_target(TargetSpec("sandbox"), sandbox, web_workers=2))
        raw = {"off": asyncio.run(raw_nats(targets["off"].nats.url, messages, 16)),
               "sandbox": asyncio.run(raw_nats(targets["sandbox"].nats.url, messages, 16))}
        raw["on"] = raw["off"]  # the same nats-server version (Antenna's 2.10)
        drains = _pairs(targets, pairs, lambda t: drain_on(t, images, concurrency), "production timings")
    tag = "antenna" if celery_concurrency == 4 else f"antenna, Celery concurrency {celery_concurrency}"
    rows += [Measurement(name, f"[{tag}] raw NATS fetch(16)+ack, Antenna's nats-server 2.10", raw["off"], "msg/s",
                         f"{messages} messages, 1 subscription"),
             Measurement(name, f"[{tag}] raw NATS fetch(16)+ack, the sandbox's nats-server", raw["sandbox"],
                         "msg/s", "")]
    rows += _compare(drains, tag, f"{images} images, {concurrency} workers, batch 16; ack_wait 300 s", raw=raw)
    if short_pairs > 0:
        settings = {**ANTENNA_PRODUCTION, "ack_wait": short_ack_wait}
        with contextlib.ExitStack() as stacks:
            targets = {mode: stacks.enter_context(running_target(spec, {**settings, "fixes": mode}, **antenna))
                       for mode in ("off", "on")}
            drains = _pairs(targets, short_pairs, lambda t: drain_on(t, images, concurrency, until_final=True),
                            f"ack_wait {short_ack_wait:g} s")
        rows += _compare(drains, f"{tag}, ack_wait {short_ack_wait:g} s",
                         f"{images} images, {concurrency} workers polling until the job is final")
    return rows


def _compare(drains: dict[str, list[dict]], tag: str, note: str, raw: dict | None = None) -> list[Measurement]:
    name, rows = "throughput", []
    for i, drained in enumerate(zip(*drains.values(), strict=True), 1):
        pair = dict(zip(drains, drained, strict=True))
        first = "HEAD first" if i % 2 else "fixes first"
        for mode, d in pair.items():
            if "stalled" in d:
                rows.append(Measurement(name, f"[{tag}, pair {i}] {LABELS[mode]} did not complete", 1, "job",
                                        d["stalled"]))
                continue
            rows += [Measurement(name, f"[{tag}, pair {i}] {LABELS[mode]} end to end", d["e2e_rate"], "tasks/s",
                                 f"{note}; {first}" if mode == "off" else ""),
                     Measurement(name, f"[{tag}, pair {i}] {LABELS[mode]} HTTP reserve+result", d["http_rate"],
                                 "tasks/s", "until the last result POST returned"),
                     Measurement(name, f"[{tag}, pair {i}] {LABELS[mode]} tasks handed out", d["handed_out"],
                                 "tasks", f"{d['redelivered']} of them again; {d['lost']} deliveries lost "
                                          "(no worker saw them)"),
                     Measurement(name, f"[{tag}, pair {i}] {LABELS[mode]} results posted", d["posted"], "results",
                                 f"{d['stored_twice']} images stored twice")]
            if mode != "sandbox":  # the sandbox does not log each result it stores
                rows.append(Measurement(name, f"[{tag}, pair {i}] {LABELS[mode]} results saved", d["saved"],
                                        "results", "times Antenna ran save_results for the job"))
        if all("e2e_rate" in pair.get(m, {}) for m in ("off", "on")):
            rows.append(Measurement(name, f"[{tag}, pair {i}] fixes / HEAD, end to end",
                                    pair["on"]["e2e_rate"] / pair["off"]["e2e_rate"], "ratio", "goal ≥ 0.97"))
    done = {mode: [d for d in ds if "e2e_rate" in d] for mode, ds in drains.items()}
    complete = [(off, on) for off, on in zip(drains["off"], drains["on"], strict=True)
                if "e2e_rate" in off and "e2e_rate" in on]
    if complete:
        rows += [Measurement(name, f"[{tag}] fixes / HEAD, end to end, median",
                             statistics.median(on["e2e_rate"] / off["e2e_rate"] for off, on in complete), "ratio",
                             f"{len(complete)} pairs; goal ≥ 0.97"),
                 Measurement(name, f"[{tag}] fixes / HEAD, HTTP, median",
                             statistics.median(on["http_rate"] / off["http_rate"] for off, on in complete), "ratio",
                             "")]
    if "sandbox" in drains:
        rounds = [(off, sb) for off, sb in zip(drains["off"], drains["sandbox"], strict=True)
                  if "e2e_rate" in off and "e2e_rate" in sb]
        if rounds:
            rows.append(Measurement(name, f"[{tag}] HEAD / sandbox (fixes off), end to end, median",
                                    statistics.median(off["e2e_rate"] / sb["e2e_rate"] for off, sb in rounds),
                                    "ratio", "same swarm, job size and run"))
    for mode, ds in drains.items():
        stalled = [d for d in ds if "stalled" in d]
        rows.append(Measurement(name, f"[{tag}] {LABELS[mode]} jobs that did not complete", len(stalled), "jobs",
                                f"of {len(ds)}; status and progress unchanged for 30 s, or not final in time"))
    for mode, ds in done.items():
        if not ds:
            continue
        label, e2e = LABELS[mode], statistics.median(d["e2e_rate"] for d in ds)
        rows.append(Measurement(name, f"[{tag}] {label} end to end, median", e2e, "tasks/s", f"{len(ds)} jobs"))
        if raw:
            rows.append(Measurement(name, f"[{tag}] {label} end to end / raw fetch(16)", e2e / raw[mode] * 100, "%",
                                    "raw NATS of its own nats-server"))
        for service in ("web", "celery_worker"):
            per_task = statistics.median(d["cpu_per_task"].get(service, 0.0) for d in ds)
            rows.append(Measurement(name, f"[{tag}] {label} CPU per task, {service}", per_task * 1000, "ms",
                                    "median over the jobs"))
        for kind in ("/tasks/ (full)", "/result/"):
            latencies = [x for d in ds for x in d["latencies"].get(kind, [])]
            if latencies:
                rows.append(Measurement(name, f"[{tag}] {label} {kind} p50", percentile(latencies, 50) * 1000, "ms",
                                        f"{len(latencies)} calls"))
    return rows
