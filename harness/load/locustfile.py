"""Locust users that behave like Antenna workers: list incomplete async jobs, reserve 16, post results.

`locust -f harness/load/locustfile.py --host http://HOST:PORT/api/v2 ...` plus these options (each also
read from the environment variable named beside it):

  --crash-share  CHAOS_LOAD_CRASH_SHARE  share of reserved batches dropped unanswered (a worker that crashed
                                         after reserving: NATS redelivers the batch after ack_wait)
  --error-share  CHAOS_LOAD_ERROR_SHARE  share of batches answered with error results (unreadable images)
  --batch-size   CHAOS_LOAD_BATCH_SIZE   tasks per reservation (16, the worker's default)
  --pipelines    CHAOS_LOAD_PIPELINES    comma-separated pipeline slugs the workers serve
  --poll-interval CHAOS_LOAD_POLL        seconds a worker waits after finding nothing to do
  --idle-stop    CHAOS_LOAD_IDLE_STOP    quit once no user has listed an incomplete job or reserved a task for
                                         this long (0: never); distributed, the workers tell the master
  --stop-after   CHAOS_LOAD_STOP_AFTER   stop the swarm this many seconds after it started (0: never): like
                                         -t, but a master first stops its workers and collects their counts
  --seed-jobs / --seed-images  CHAOS_LOAD_JOBS / CHAOS_LOAD_IMAGES   create and start jobs at test start
                                         (the sandbox's POST /jobs/ with "start"; harness.load.run creates
                                         them itself on any target). One process only: a master that seeds
                                         at test start lost its workers (missed heartbeats) when tried
  --counts-file  CHAOS_LOAD_COUNTS_FILE  write the swarm's batch counts, its requests and failures per
                                         endpoint, when it posted its first and last accepted results and, per
                                         "job:image", the deliveries received and dropped (JSON) when Locust quits,
                                         with the same per process under "workers" (harness/load/report.py)

Distributed (`--master` and `--worker`s): the options are given to the master, which hands them to its workers.
Each worker sends its counts to the master when it stops (a custom message), so the master's counts file has
every worker's, wherever the workers run.

The worker token comes from CHAOS_TOKEN, or from the file named by CHAOS_TOKEN_FILE. Results are built by
harness.workers.protocol, naming the algorithms every target registers for the simulated workers' pipeline.
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
from collections import Counter
from pathlib import Path

import gevent
from locust import constant, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.runners import MasterRunner, WorkerRunner

from harness.load.report import merge
from harness.workers.protocol import error_result, success_result

counts: Counter = Counter()  # batches and tasks by outcome, in this process
handed: Counter = Counter()  # "job:image" -> deliveries this process received through /tasks/
crashed: Counter = Counter()  # "job:image" -> deliveries this process dropped unanswered
calls: Counter = Counter()  # request name -> requests this process made
failures: Counter = Counter()  # "name: error" -> requests that failed (Locust's CSV may miss the last ones)
answered_between: list[float] = []  # wall-clock time of the first and the last accepted result POST
_last_work_seen: list[float] = []  # monotonic time work was last seen: a job listed or tasks reserved
users_started: Counter = Counter()  # "users": the Locust users this process started
_worker_entries: dict[str, dict] = {}  # on a master: each worker's counts, by worker id
_own_counts_file: list[str] = []  # this process's --counts-file (a master hands its own options to its workers)
WORK_SEEN_EVERY = 1.0  # seconds between a worker's "work_seen" messages to its master
_last_told_master: list[float] = []  # on a worker: monotonic time of its last "work_seen" message


@events.init_command_line_parser.add_listener
def _options(parser):
    parser.add_argument("--crash-share", type=float, env_var="CHAOS_LOAD_CRASH_SHARE", default=0.0)
    parser.add_argument("--error-share", type=float, env_var="CHAOS_LOAD_ERROR_SHARE", default=0.0)
    parser.add_argument("--batch-size", type=int, env_var="CHAOS_LOAD_BATCH_SIZE", default=16)
    parser.add_argument("--pipelines", env_var="CHAOS_LOAD_PIPELINES", default="moth-detector")
    parser.add_argument("--poll-interval", type=float, env_var="CHAOS_LOAD_POLL", default=0.5)
    parser.add_argument("--idle-stop", type=float, env_var="CHAOS_LOAD_IDLE_STOP", default=0.0)
    parser.add_argument("--stop-after", type=float, env_var="CHAOS_LOAD_STOP_AFTER", default=0.0)
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
        users_started["users"] += 1
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
            self.saw_work()
        return jobs[0]["id"] if jobs else None

    def saw_work(self) -> None:
        """Note that work was there (a job listed or tasks reserved): the idle rule's clock restarts."""
        now, runner = time.monotonic(), self.environment.runner
        _last_work_seen[:] = [now]
        if isinstance(runner, WorkerRunner) and (not _last_told_master or now - _last_told_master[0] > WORK_SEEN_EVERY):
            runner.send_message("work_seen")
            _last_told_master[:] = [now]

    def reserve(self, job_id: int) -> list[dict]:
        with self.client.post(f"/jobs/{job_id}/tasks/", json={"batch_size": self.options.batch_size},
                              headers=self.headers, name="/jobs/[id]/tasks/", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"tasks: {r.status_code}")
                return []
            tasks = r.json()["tasks"]
        handed.update(f"{job_id}:{t['image_id']}" for t in tasks)
        if tasks:
            self.saw_work()
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


@events.init.add_listener
def _on_init(environment, runner=None, **kwargs):
    _own_counts_file[:] = [getattr(environment.parsed_options, "counts_file", "") or ""]
    if isinstance(runner, MasterRunner):
        runner.register_message("worker_counts", _receive_worker_counts)
        runner.register_message("work_seen", _receive_work_seen)


def _receive_worker_counts(environment, msg, **kwargs):
    _worker_entries[msg.node_id] = {**msg.data, "index": environment.runner.get_worker_index(msg.node_id)}


def _receive_work_seen(environment, msg, **kwargs):
    _last_work_seen[:] = [time.monotonic()]


@events.test_start.add_listener
def _on_test_start(environment, **kwargs):
    if isinstance(environment.runner, WorkerRunner):
        return
    options = environment.parsed_options
    if options.seed_jobs:
        seed_jobs(environment.host, options.seed_jobs, options.seed_images, options.pipelines.split(",")[0])
    if options.idle_stop > 0:
        gevent.spawn(_quit_when_idle, environment, options.idle_stop)
    if options.stop_after > 0:
        gevent.spawn_later(options.stop_after, finish, environment)


@events.test_stop.add_listener
def _on_test_stop(environment, **kwargs):
    if isinstance(environment.runner, WorkerRunner):  # arrives before the worker tells the master it stopped
        environment.runner.send_message("worker_counts", own_entry(environment))


def seed_jobs(api_url: str, jobs: int, images: int, pipeline: str) -> None:
    from geventhttpclient import URL, HTTPClient

    url = URL(f"{api_url.rstrip('/')}/jobs/")
    client = HTTPClient.from_url(url, connection_timeout=10, network_timeout=120)
    headers = {"Authorization": f"Token {worker_token()}", "Content-Type": "application/json"}
    for _ in range(jobs):
        body = json.dumps({"images": images, "pipeline": pipeline, "start": True})
        response = client.post(url.request_uri, body=body, headers=headers)
        answer = response.read()  # read in full: the next POST reuses the connection, and hangs on an unread body
        if response.status_code != 201:
            raise RuntimeError(f"creating a job failed: {response.status_code} {answer[:200]!r}")
    client.close()


def _quit_when_idle(environment, idle_stop: float) -> None:
    while True:
        gevent.sleep(0.5)
        if _last_work_seen and time.monotonic() - _last_work_seen[0] > idle_stop:
            finish(environment)
            return


def finish(environment, collect_timeout: float = 10.0) -> None:
    """End the swarm. A master first stops its workers (each sends its counts as it stops) and waits for
    every expected worker's counts, then quits; Locust's own -t would quit the workers without that."""
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        runner.stop()
        deadline = time.monotonic() + collect_timeout
        while len(_worker_entries) < environment.parsed_options.expect_workers and time.monotonic() < deadline:
            gevent.sleep(0.1)
    runner.quit()


def own_entry(environment) -> dict:
    """This process's counts (harness/load/report.py's entry)."""
    runner = environment.runner
    return {"index": runner.worker_index if isinstance(runner, WorkerRunner) else 0,
            "host": socket.gethostname(), "pid": os.getpid(), "users": users_started["users"],
            "counts": dict(counts), "handed": dict(handed), "crashed": dict(crashed), "requests": dict(calls),
            "failures": dict(failures), "answered_between": list(answered_between)}


@events.request.add_listener
def _count_request(name, exception=None, **kwargs):
    calls[name] += 1
    if exception is not None:
        failures[f"{name}: {exception}"] += 1


@events.quitting.add_listener
def _write_counts(environment, **kwargs):
    path = _own_counts_file[0] if _own_counts_file else ""
    if not path or isinstance(environment.runner, WorkerRunner):
        return
    if isinstance(environment.runner, MasterRunner):
        entries = list(_worker_entries.values())
    else:
        entries = [own_entry(environment)]
    Path(path).write_text(json.dumps(merge(entries), sort_keys=True))
