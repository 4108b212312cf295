"""Where a result's time goes on its way through the sandbox (evidence for the throughput benchmark).

* enqueue: what /result/ spends handing one POST of 16 results to Celery — one `process_results` message
  carrying the 16 (what the view does) against 16 one-result messages (what it did before);
* process: the Celery task run synchronously in one process over `images` reserved tasks, first with one
  result per task, then with 16 per task (the size of a worker's POST) — wall time, SQL queries and Redis
  round trips per result. No Celery concurrency, no HTTP: the floor of one worker. The job is left one
  result short of complete, so every call is the steady state.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from harness.bench.common import Measurement, api, reserve, running_stack, started_job
from harness.workers.protocol import success_result

BATCH = 16

SCRIPT = """
import json, time
import django
django.setup()
from django.db import connection
from django.test.utils import CaptureQueriesContext
from harness.sandbox.jobs.tasks import process_result, process_results

job_id, items = json.load(open({path!r}))
batch = items[:{batch}]
rounds = 20
process_results.apply_async(args=[0, batch])  # connect the producer before timing
began = time.perf_counter()
for _ in range(rounds):
    process_results.apply_async(args=[0, batch], argsrepr="(0, <16 results>)")  # as the view sends it
one_task = (time.perf_counter() - began) / rounds
began = time.perf_counter()
for _ in range(rounds):
    process_results.apply_async(args=[0, batch])
one_task_repr = (time.perf_counter() - began) / rounds
began = time.perf_counter()
for _ in range(rounds):
    for subject, result in batch:
        process_result.apply_async(args=[0, subject, result])
per_result_tasks = (time.perf_counter() - began) / rounds

import redis.connection
redis_calls = []
original = redis.connection.Connection.send_packed_command
def counted(self, *args, **kwargs):
    redis_calls.append(1)
    return original(self, *args, **kwargs)
redis.connection.Connection.send_packed_command = counted

def timed(chunks):
    redis_calls.clear()
    with CaptureQueriesContext(connection) as queries:
        began = time.perf_counter()
        for chunk in chunks:
            process_results(job_id, chunk)
        seconds = time.perf_counter() - began
    n = sum(len(c) for c in chunks)
    return {{"seconds": seconds / n, "sql": len(queries) / n, "redis": len(redis_calls) / n}}

process_results(job_id, items[:1])  # connections, caches
rest = items[1:-1]  # the last result stays unposted: the job never completes during the timing
half = len(rest) // 2
single = timed([[item] for item in rest[:half]])
batched = timed([rest[i:i + {batch}] for i in range(half, len(rest), {batch})])
print(json.dumps({{"enqueue_16_tasks": per_result_tasks, "enqueue_one_task": one_task,
                  "enqueue_one_task_repr": one_task_repr,
                  "single": single, "batched": batched}}))
"""


def run(images: int = 322) -> list[Measurement]:
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
            out = stack.python("-c", SCRIPT.format(path=str(path), batch=BATCH), timeout=600)
    r = json.loads(out.strip().splitlines()[-1])
    name, half = "result_path", (images - 2) // 2
    rows = [Measurement(name, f"enqueue {BATCH} results as 1 Celery task (per POST)", r["enqueue_one_task"] * 1000,
                        "ms", "what /result/ does (short argsrepr)"),
            Measurement(name, f"enqueue {BATCH} results as 1 Celery task, Celery's argsrepr",
                        r["enqueue_one_task_repr"] * 1000, "ms", "a repr of every result in the headers"),
            Measurement(name, f"enqueue {BATCH} results as {BATCH} Celery tasks (per POST)",
                        r["enqueue_16_tasks"] * 1000, "ms", "one task per result")]
    for key, label in (("single", "1 result per task"), ("batched", f"{BATCH} results per task")):
        m = r[key]
        rows += [Measurement(name, f"process_results per result, {label}", m["seconds"] * 1000, "ms",
                             f"{half} results, synchronous, one process"),
                 Measurement(name, f"SQL queries per result, {label}", m["sql"], "queries", ""),
                 Measurement(name, f"Redis round trips per result, {label}", m["redis"], "round trips",
                             "a pipeline is one")]
    return rows
