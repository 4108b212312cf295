"""What a job's stream and consumer cost one nats-server: RSS per job and the creation rate as streams pile up.

For each storage named, two fresh nats-servers: one gets `count` job streams (the sandbox's layout, one task
each) and no consumer, the other the same streams with each job's consumer (per attempt, as with fencing on).
The creation runs over one connection with `in_flight` jobs at once; after each fifth of the jobs the row
records the rate of that fifth and the server's CPU time spent on it, so a per-stream cost that grows with the
number of streams already there shows as a falling rate. With consumers, the two requests a sweep pass makes are
then timed one at a time: a STREAM.LIST page (256 streams, filtered by the task subject, from the middle) and a
consumer's info. `nats_memlimit` is the servers' GOMEMLIMIT.
"""

from __future__ import annotations

import asyncio
import json
import time

import psutil

from harness.bench.common import Measurement
from harness.infra.nats import NatsServer

FIFTHS = 5
LOOKS = 20  # STREAM.LIST pages timed; ten times as many consumer infos


def run(count: int = 5000, storage: str = "file,memory", in_flight: int = 64, nats_memlimit: str = "") -> list[Measurement]:
    rows = []
    for kind in (s.strip() for s in storage.split(",")):
        for consumers in (False, True):
            what = f"[{kind}, {'stream + consumer' if consumers else 'stream only'}]"
            rows += _one_server(what, kind, consumers, count, in_flight, nats_memlimit)
    return rows


def _one_server(what: str, storage: str, consumers: bool, count: int, in_flight: int, memlimit: str) -> list[Measurement]:
    from fixes.jetstream import JobQueue
    from fixes.layout import QueueLayout

    server = NatsServer(env={"GOMEMLIMIT": memlimit} if memlimit else None)
    server.start()
    try:
        process = psutil.Process(server.pid)
        layout = QueueLayout(storage=storage, per_attempt_consumer=True, ack_wait=300, max_deliver=3)
        idle = process.memory_info().rss
        rates, cpu, looks = [], [], {}

        async def create() -> None:
            queue = await JobQueue.connect(server.url, layout, api_timeout=60)
            gate = asyncio.Semaphore(in_flight)

            async def one(job_id: int) -> None:
                async with gate:
                    if consumers:
                        await queue.create(job_id, 1)
                    else:
                        await queue._js.add_stream(queue._stream_config(job_id))
                    await queue.publish(job_id, [(layout.msg_id(job_id, 1, job_id), json.dumps({"id": job_id}).encode())])

            try:
                step = max(1, count // FIFTHS)
                for at in range(0, count, step):
                    began, cpu_before = time.perf_counter(), sum(process.cpu_times()[:2])
                    await asyncio.gather(*(one(job_id) for job_id in range(at, min(at + step, count))))
                    done = min(at + step, count) - at
                    rates.append(done / (time.perf_counter() - began))
                    cpu.append((sum(process.cpu_times()[:2]) - cpu_before) / done * 1000)
                if consumers:
                    looks.update(await _sweep_requests(queue, layout, count))
            finally:
                await queue.close()

        asyncio.run(create())
        per_job = (process.memory_info().rss - idle) / count / 1024
    finally:
        server.stop()
    return [Measurement("nats_objects", f"{what} nats-server RSS per job", per_job, "KiB", f"{count} jobs"),
            *(Measurement("nats_objects", f"{what} {name}", ms, "ms", "one at a time, mean") for name, ms in looks.items()),
            Measurement("nats_objects", f"{what} creation rate, first fifth", rates[0], "jobs/s",
                        f"server CPU {cpu[0]:.2f} ms per job"),
            Measurement("nats_objects", f"{what} creation rate, last fifth", rates[-1], "jobs/s",
                        f"server CPU {cpu[-1]:.2f} ms per job; every fifth: " + ", ".join(f"{r:.0f}" for r in rates))]


async def _sweep_requests(queue, layout, count: int) -> dict[str, float]:
    """Mean milliseconds of a filtered STREAM.LIST page and of a CONSUMER.INFO, asked one at a time."""
    subject = layout.subject("*")
    began = time.perf_counter()
    for _ in range(LOOKS):
        await queue._api("STREAM.LIST", {"subject": subject, "offset": count // 2})
    page = (time.perf_counter() - began) / LOOKS * 1000
    began = time.perf_counter()
    for job_id in range(0, count, max(1, count // (10 * LOOKS)))[:10 * LOOKS]:
        await queue._api(f"CONSUMER.INFO.{layout.stream(job_id)}.{layout.consumer(job_id, 1)}")
    info = (time.perf_counter() - began) / min(count, 10 * LOOKS) * 1000
    return {"STREAM.LIST page": page, "consumer info": info}
