"""Locust users that behave like Antenna workers: list incomplete async jobs, reserve 16, post results.

`locust -f harness/load/locustfile.py --host http://HOST:PORT/api/v2 ...` plus these options (each also
read from the environment variable named beside it):

  --crash-share  CHAOS_LOAD_CRASH_SHARE  share of reserved batches dropped unanswered (a worker that crashed
                                         after reserving: NATS redelivers the batch after ack_wait)
  --error-share  CHAOS_LOAD_ERROR_SHARE  share of batches answered with error results (unreadable images)
  --batch-size   CHAOS_LOAD_BATCH_SIZE   tasks per reservation (16, the worker's default)
  --pipelines    CHAOS_LOAD_PIPELINES    comma-separated pipeline slugs the workers serve
  --poll-interval CHAOS_LOAD_POLL        seconds a worker waits after finding nothing to do
  --idle-stop    CHAOS_LOAD_IDLE_STOP    quit once no incomplete job was listed for this long (0: never;
                                         only in a single-process run)
  --seed-jobs / --seed-images  CHAOS_LOAD_JOBS / CHAOS_LOAD_IMAGES   create and start jobs at test start
                                         (the sandbox's POST /jobs/ with "start"; harness.load.run creates
                                         them itself on any target)
  --counts-file  CHAOS_LOAD_COUNTS_FILE  write this process's batch counts, its requests and failures per
                                         endpoint, when it posted its first and last accepted results and, per
                                         "job:image", the deliveries received and dropped (JSON) when Locust quits

The worker token comes from CHAOS_TOKEN, or from the file named by CHAOS_TOKEN_FILE. Results are built by
harness.workers.protocol, naming the algorithms every target registers for the simulated workers' pipeline.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from pathlib import Path

import gevent
from locust import constant, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.runners import WorkerRunner

from harness.workers.protocol import error_result, success_result

counts: Counter = Counter()  # batches and tasks by outcome, in this process
handed: Counter = Counter()  # "job:image" -> deliveries this process received through /tasks/
crashed: Counter = Counter()  # "job:image" -> deliveries this process dropped unanswered
calls: Counter = Counter()  # request name -> requests this process made
failures: Counter = Counter()  # "name: error" -> requests that failed (Locust's CSV may miss the last ones)
answered_between: list[float] = []  # wall-clock time of the first and the last accepted result POST
_last_jobs_seen: list[float] = []  # monotonic time a list call last returned a job (empty: never)


@events.init_command_line_parser.add_listener
def _options(parser):
    parser.add_argument("--crash-share", type=float, env_var="CHAOS_LOAD_CRASH_SHARE", default=0.0)
    parser.add_argument("--error-share", type=float, env_var="CHAOS_LOAD_ERROR_SHARE", default=0.0)
    parser.add_argument("--batch-size", type=int, env_var="CHAOS_LOAD_BATCH_SIZE", default=16)
    parser.add_argument("--pipelines", env_var="CHAOS_LOAD_PIPELINES", default="moth-detector")
    parser.add_argument("--poll-interval", type=float, env_var="CHAOS_LOAD_POLL", default=0.5)
    parser.add_argument("--idle-stop", type=float, env_var="CHAOS_LOAD_IDLE_STOP", default=0.0)
    parser.add_argument("--seed-jobs", type=int, env_var="CHAOS_LOAD_JOBS", default=0)
    parser.add_argument("--seed-images", type=int, env_var="CHAOS_LOAD_IMAGES", default=100)
    parser.add_argument("--counts-file", env_var="CHAOS_LOAD_COUNTS_FILE", default="")


def worker_token() -> str:
    if os.environ.get("CHAOS_TOKEN"):
        return os.environ["CHAOS_TOKEN"]
    path = os.environ.get("CHAOS_TOKEN_FILE")
    if not path:
        raise RuntimeError("set CHAOS_TOKEN or CHAOS_TOKEN_FILE to the sandbox's worker token")
    return Path(path).read_text().strip()


class AntennaWorker(FastHttpUser):
    """One worker process: list jobs, then reserve batches of one job until it hands out nothing."""

    wait_time = constant(0)  # the task sleeps itself when there is nothing to do

    def on_start(self):
        self.headers = {"Authorization": f"Token {worker_token()}"}
        self.options = self.environment.parsed_options
        # Boxes drawn at random per processing, stamped with the time it ran: Antenna keeps one detection per
        # (image, box), so a second processing of an image with identical answers would leave no trace to count.
        self.random = random.Random()

    @task
    def work(self):
        job_id = self.pick_job()
        while job_id is not None:
            tasks = self.reserve(job_id)
            if not tasks:
                break
            self.answer(job_id, tasks)
        gevent.sleep(self.options.poll_interval)

    def pick_job(self) -> int | None:
        params = {"pipeline__slug__in": self.options.pipelines, "ids_only": 1, "incomplete_only": 1,
                  "dispatch_mode": "async_api"}  # no limit: Antenna then answers one random job
        query = "&".join(f"{key}={value}" for key, value in params.items())
        with self.client.get(f"/jobs?{query}", headers=self.headers, name="/jobs", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"list: {r.status_code}")
                return None
            jobs = r.json()["results"]
        if jobs:
            _last_jobs_seen[:] = [time.monotonic()]
        return jobs[0]["id"] if jobs else None

    def reserve(self, job_id: int) -> list[dict]:
        with self.client.post(f"/jobs/{job_id}/tasks/", json={"batch_size": self.options.batch_size},
                              headers=self.headers, name="/jobs/[id]/tasks/", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"tasks: {r.status_code}")
                return []
            tasks = r.json()["tasks"]
        handed.update(f"{job_id}:{t['image_id']}" for t in tasks)
        return tasks

    def answer(self, job_id: int, tasks: list[dict]) -> None:
        roll = random.random()
        if roll < self.options.crash_share:
            counts["crashed_batches"] += 1
            counts["crashed_tasks"] += len(tasks)
            crashed.update(f"{job_id}:{t['image_id']}" for t in tasks)
            return
        failed = roll < self.options.crash_share + self.options.error_share
        pipeline = self.options.pipelines.split(",")[0]
        results = [{"reply_subject": t["reply_subject"],
                    "result": error_result(t, "load test: unreadable image") if failed
                    else success_result(t, pipeline, rng=self.random)} for t in tasks]
        with self.client.post(f"/jobs/{job_id}/result/", json={"results": results}, headers=self.headers,
                              name="/jobs/[id]/result/", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"result: {r.status_code}")
                counts["lost_batches"] += 1  # the worker drops them; NATS redelivers
                return
        now = time.time()
        answered_between[:] = [answered_between[0] if answered_between else now, now]
        outcome = "error" if failed else "success"
        counts[f"{outcome}_batches"] += 1
        counts[f"{outcome}_tasks"] += len(tasks)


@events.test_start.add_listener
def _on_test_start(environment, **kwargs):
    if isinstance(environment.runner, WorkerRunner):
        return
    options = environment.parsed_options
    if options.seed_jobs:
        seed_jobs(environment.host, options.seed_jobs, options.seed_images, options.pipelines.split(",")[0])
    if options.idle_stop > 0 and type(environment.runner).__name__ == "LocalRunner":
        gevent.spawn(_quit_when_idle, environment, options.idle_stop)


def seed_jobs(api_url: str, jobs: int, images: int, pipeline: str) -> None:
    from geventhttpclient import URL, HTTPClient

    url = URL(f"{api_url.rstrip('/')}/jobs/")
    client = HTTPClient.from_url(url, connection_timeout=10, network_timeout=120)
    headers = {"Authorization": f"Token {worker_token()}", "Content-Type": "application/json"}
    for _ in range(jobs):
        body = json.dumps({"images": images, "pipeline": pipeline, "start": True})
        response = client.post(url.request_uri, body=body, headers=headers)
        if response.status_code != 201:
            raise RuntimeError(f"creating a job failed: {response.status_code} {response.read()[:200]!r}")
    client.close()


def _quit_when_idle(environment, idle_stop: float) -> None:
    while True:
        gevent.sleep(0.5)
        if _last_jobs_seen and time.monotonic() - _last_jobs_seen[0] > idle_stop:
            environment.runner.quit()
            return


@events.request.add_listener
def _count_request(name, exception=None, **kwargs):
    calls[name] += 1
    if exception is not None:
        failures[f"{name}: {exception}"] += 1


@events.quitting.add_listener
def _write_counts(environment, **kwargs):
    path = getattr(environment.parsed_options, "counts_file", "")
    if path:
        Path(path).write_text(json.dumps({**counts, "handed": handed, "crashed": crashed, "requests": calls,
                                          "failures": failures, "answered_between": answered_between},
                                         sort_keys=True))
