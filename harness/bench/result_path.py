"""Where a result's time goes on its way through the sandbox (evidence for the throughput benchmark).

* enqueue: what /result/ spends handing one POST of 16 results to Celery — 16 `process_result.apply_async`
  (what the view does) against one message carrying all 16 (what a batched task would cost);
* process: `process_result` run synchronously in one process for each of `images` reserved tasks — wall
  time, SQL queries and Redis round trips per result. No Celery concurrency, no HTTP: the floor of one worker.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from harness.bench.common import Measurement, api, reserve, running_stack, started_job
from harness.workers.protocol import success_result

SCRIPT = """
import json, time
import django
django.setup()
from django.db import connection
from django.test.utils import CaptureQueriesContext
from harness.sandbox.celery_app import app
from harness.sandbox.jobs.tasks import process_result

job_id, items = json.load(open({path!r}))
batch = items[:16]
rounds = 20
process_result.apply_async(args=[0, *batch[0]])  # connect the producer before timing
began = time.perf_counter()
for _ in range(rounds):
    for subject, result in batch:
        process_result.apply_async(args=[0, subject, result])
per_result_tasks = (time.perf_counter() - began) / rounds
began = time.perf_counter()
for _ in range(rounds):
    app.send_task("bench.not_consumed", args=[0, batch], queue="bench")
one_task = (time.perf_counter() - began) / rounds

import redis.connection
redis_calls = []
original = redis.connection.Connection.send_packed_command
def counted(self, *args, **kwargs):
    redis_calls.append(1)
    return original(self, *args, **kwargs)
redis.connection.Connection.send_packed_command = counted
process_result(job_id, *items[0])
redis_calls.clear()
with CaptureQueriesContext(connection) as queries:
    began = time.perf_counter()
    for subject, result in items[1:]:
        process_result(job_id, subject, result)
    seconds = time.perf_counter() - began
n = len(items) - 1
print(json.dumps({{"enqueue_16_tasks": per_result_tasks, "enqueue_one_task": one_task,
                  "process_seconds": seconds / n, "sql_per_result": len(queries) / n,
                  "redis_per_result": len(redis_calls) / n}}))
"""


def run(images: int = 300) -> list[Measurement]:
    settings = {"fixes": "on", "ack_wait": 300, "max_deliver": 3}
    with running_stack(settings, web_workers=1, beat=False) as stack:
        job_id = started_job(stack, images)
        with api(stack) as http:
            tasks = []
            while len(tasks) < images:
                tasks += reserve(http, job_id, 100)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "results.json"
            path.write_text(json.dumps([job_id, [[t["reply_subject"], success_result(t)] for t in tasks]]))
            # stopped first: the timed calls must not compete with a worker consuming the same queue
            stack.celery_worker.stop()
            out = stack.python("-c", SCRIPT.format(path=str(path)), timeout=600)
    r = json.loads(out.strip().splitlines()[-1])
    name = "result_path"
    return [Measurement(name, "enqueue 16 results as 16 Celery tasks (per POST)", r["enqueue_16_tasks"] * 1000, "ms",
                        "what /result/ does now"),
            Measurement(name, "enqueue 16 results as 1 Celery task (per POST)", r["enqueue_one_task"] * 1000, "ms",
                        "one message carrying the batch"),
            Measurement(name, "process_result per result, one process", r["process_seconds"] * 1000, "ms",
                        f"{images - 1} results, synchronous"),
            Measurement(name, "SQL queries per result", r["sql_per_result"], "queries", ""),
            Measurement(name, "Redis round trips per result", r["redis_per_result"], "round trips",
                        "a pipeline is one")]
