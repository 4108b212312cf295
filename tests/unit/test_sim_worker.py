"""Simulated workers against an in-memory fake of the worker API (httpx.MockTransport): what they send, how
they retry, what they record. The live sandbox is exercised by the integration tests."""

from __future__ import annotations

import asyncio
import json
import threading
from urllib.parse import urlsplit

import httpx
import pytest

from harness.history import History
from harness.workers import SimWorker, WorkerKind, run_workers
from harness.workers.protocol import TaskResults

API = "http://antenna.test/api/v2"


class FakeAntenna:
    """Hands out each job's tasks once (no redelivery) and answers result posts with per-task statuses."""

    def __init__(self, jobs: dict[int, int], pipeline: str = "moth-detector"):
        self.pending = {job: [f"{job}-{i}" for i in range(n)] for job, n in jobs.items()}
        self.pipeline, self.requests, self.results = pipeline, [], []
        self.refuse: dict[str, list[int]] = {}  # "list" | "reserve" -> status codes to answer first
        self.bad_task_id = False  # answer /tasks/ with a numeric task id (the real worker rejects it)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.requests.append((request.method, str(request.url), body, request.headers.get("authorization")))
        parts = urlsplit(str(request.url)).path.removeprefix("/api/v2").strip("/").split("/")
        if request.method == "GET" and parts == ["jobs"]:
            if self.refuse.get("list"):
                return httpx.Response(self.refuse["list"].pop(0), headers={"Retry-After": "0"})
            live = [{"id": job, "pipeline_slug": self.pipeline} for job, left in self.pending.items() if left]
            return httpx.Response(200, json={"count": len(live), "next": None, "previous": None, "results": live})
        job = int(parts[1])
        if parts[2:] == ["tasks"]:
            if self.refuse.get("reserve"):
                return httpx.Response(self.refuse["reserve"].pop(0), headers={"Retry-After": "0"})
            batch, self.pending[job] = self.pending[job][:body["batch_size"]], self.pending[job][body["batch_size"]:]
            tasks = [{"id": 7 if self.bad_task_id else f"t{image}", "image_id": image,
                      "image_url": f"http://img.test/{image}.jpg", "reply_subject": f"$JS.ACK.{image}"}
                     for image in batch]
            return httpx.Response(200, json={"tasks": tasks})
        if parts[2:] == ["tasks", "in_progress"]:
            return httpx.Response(200, json={"status": "ok"})
        seen = {entry["reply_subject"] for posted in self.results for entry in posted}
        self.results.append(body["results"])
        statuses = [{"reply_subject": r["reply_subject"], "task_id": "c1",
                     "status": "rejected_duplicate" if r["reply_subject"] in seen else "queued"} for r in body["results"]]
        return httpx.Response(200, json={"status": "accepted", "job_id": job, "results_queued": len(statuses),
                                         "tasks": statuses})


def run(worker: SimWorker):
    return asyncio.run(worker.run())


def test_a_healthy_worker_sends_what_the_real_worker_sends_and_drains_the_job():
    fake, history = FakeAntenna({5: 10}), History()
    summary = run(SimWorker(API, "secret", batch_size=4, transport=fake.transport(), history=history, seed=1))
    assert (summary.reserved, summary.batches, summary.posted) == (10, 3, 10)
    assert summary.statuses == {"queued": 10} and not summary.http_errors
    method, url, body, auth = fake.requests[0]
    assert (method, auth, body) == ("GET", "Token secret", None)
    assert url == (f"{API}/jobs?pipeline__slug__in=moth-detector&ids_only=1&incomplete_only=1"
                   "&dispatch_mode=async_api")
    assert fake.requests[1][:3] == ("POST", f"{API}/jobs/5/tasks/", {"batch_size": 4})
    assert fake.requests[2][1] == f"{API}/jobs/5/result/"
    posted = TaskResults.model_validate({"results": [r for batch in fake.results for r in batch]})
    assert len(posted.results) == 10 and all(r.result.pipeline == "moth-detector" for r in posted.results)
    invokes, outcomes = history.of(type="invoke"), [op for op in history if op.type != "invoke"]
    assert len(invokes) == len(outcomes) == len(fake.requests)
    reserved = [s for op in history.of("reserve", "ok") for s in op.value["reply_subjects"]]
    assert sorted(reserved) == sorted(f"$JS.ACK.5-{i}" for i in range(10))
    assert all(op.value["job"] == 5 and op.value["status"] == 200 for op in history.of("post", "ok"))


def test_crash_after_reserve_takes_one_batch_and_posts_nothing():
    fake = FakeAntenna({1: 8})
    summary = run(SimWorker(API, "t", kind="crash_after_reserve", batch_size=3, transport=fake.transport()))
    assert summary.crashed and (summary.reserved, summary.posted) == (3, 0) and not fake.results
    assert WorkerKind.parse("crash_after_reserve") is WorkerKind.CRASH_AFTER_RESERVE


def test_duplicate_posts_every_batch_twice_and_poison_posts_errors():
    fake = FakeAntenna({1: 4})
    summary = run(SimWorker(API, "t", kind="duplicate", transport=fake.transport()))
    assert summary.posted == 8 and summary.statuses == {"queued": 4, "rejected_duplicate": 4}
    fake = FakeAntenna({2: 3})
    run(SimWorker(API, "t", kind="poison", transport=fake.transport()))
    assert [set(r["result"]) for r in fake.results[0]] == [{"error", "image_id"}] * 3


def test_a_slow_worker_heartbeats_only_when_told_to():
    for heartbeat in (False, True):
        fake = FakeAntenna({1: 2})
        summary = run(SimWorker(API, "t", kind="slow", ack_wait=0.1, hold=0.2, heartbeat=heartbeat,
                                transport=fake.transport()))
        beats = [r for r in fake.requests if r[1].endswith("/tasks/in_progress/")]
        assert summary.posted == 2 and summary.heartbeats == len(beats)
        assert len(beats) >= 2 if heartbeat else not beats  # every ack_wait / 2 while held
        assert all(r[2] == {"reply_subjects": ["$JS.ACK.1-0", "$JS.ACK.1-1"]} for r in beats)


def test_gets_are_retried_on_503_but_posts_never():
    fake = FakeAntenna({1: 2})
    fake.refuse = {"list": [503, 502, 503], "reserve": [503]}
    history = History()
    summary = run(SimWorker(API, "t", idle_rounds=1, transport=fake.transport(), history=history))
    assert summary.http_errors == {503: 3, 502: 1} and summary.reserved == 0  # one refused reserve, then idle
    assert [op.value.get("attempt", 0) for op in history.of("list", "invoke")] == [0, 1, 2, 3]
    assert len(history.of("reserve", "invoke")) == 1


def test_a_response_the_real_worker_rejects_is_recorded_and_its_tasks_are_dropped():
    fake, history = FakeAntenna({1: 2}), History()
    fake.bad_task_id = True
    summary = run(SimWorker(API, "t", idle_rounds=1, transport=fake.transport(), history=history))
    assert summary.invalid_responses == 1 and summary.reserved == 0 and not fake.results
    (op,) = history.of("reserve", "info")
    assert op.value["status"] == 200 and "string" in op.value["invalid"]


def test_a_threading_stop_event_ends_polling_workers():
    stop, fake = threading.Event(), FakeAntenna({})
    threading.Timer(0.3, stop.set).start()
    summary = asyncio.run(run_workers(API, "t", count=3, stop=stop, until_idle=False, poll_interval=0.05,
                                      transport=fake.transport()))
    assert summary.workers == 3 and summary.reserved == 0


def test_a_deadline_abandons_a_held_batch():
    fake, history = FakeAntenna({1: 2}), History()
    summary = run(SimWorker(API, "t", kind="slow", hold=60, duration=0.2, transport=fake.transport(),
                            history=history))
    assert summary.abandoned == 2 and not fake.results and history.of("abandon", "info")


def test_the_history_streams_to_disk_and_survives_a_torn_last_line(tmp_path):
    path = tmp_path / "ops.jsonl"
    history = History()
    history.append("w", "list", "invoke", {"job": None})
    history.stream_to(path)
    history.append("w", "list", "ok", {"status": 200})
    with open(path, "a") as torn:
        torn.write('{"time": 1, "proc')
    history.close()
    read = History.from_jsonl(path)
    assert [(op.f, op.type) for op in read] == [("list", "invoke"), ("list", "ok")]
    with pytest.raises(ValueError):
        history.append("w", "list", "done")


def test_cli_parses_every_flag():
    from harness.workers.__main__ import parser

    args = parser().parse_args(["--api-url", API, "--token", "t", "--kind", "slow", "--count", "2",
                                "--pipeline", "a", "--pipeline", "b", "--batch-size", "5", "--ack-wait", "3",
                                "--heartbeat", "--until-idle", "--duration", "9", "--history", "h.jsonl"])
    assert (args.pipelines, args.ack_wait, args.heartbeat, args.until_idle) == (["a", "b"], 3.0, True, True)
