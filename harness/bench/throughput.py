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
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import nats
import psutil
from nats.js import api as js_api

from harness.bench.common import Measurement, job, percentile, running_stack, started_job, unix_time
from harness.bench.swarm import Swarm
from harness.workers.protocol import success_result

PAYLOAD = json.dumps({"id": "123-4567", "image_id": "4567", "job_id": 123, "attempt": 1,
                      "image_url": "http://127.0.0.1:8000/media/images/4567.gif"}).encode()


async def raw_nats(url: str, messages: int, batch: int) -> float:
    """Messages per second drained with fetch(batch) + ack, one subscription (one process)."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    stream = f"bench_raw_{batch}"
    await js.add_stream(js_api.StreamConfig(name=stream, subjects=[f"{stream}.tasks"]))
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
            totals[name] = sum(_cpu(psutil.Process(pid)) for pid in [service.pid, *service.child_pids()] if pid)
        return totals

    def __enter__(self):
        self._before, self._began = self._sample(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        after, self.wall = self._sample(), time.perf_counter() - self._began
        self.used = {name: after[name] - self._before.get(name, 0.0) for name in after}


def _cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
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
