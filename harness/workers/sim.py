"""Simulated workers speaking the Antenna worker HTTP protocol (asyncio + httpx).

Each kind is one behaviour a real deployment sees: healthy, crash-after-reserve, slow (optionally
heartbeating with the in_progress extension), poison (error results), duplicate (posts twice).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from harness.history import History
from harness.workers.protocol import error_result, success_result

KINDS = ("healthy", "crash-after-reserve", "slow", "poison", "duplicate")


@dataclass
class Summary:
    reserved: int = 0
    posted: int = 0
    batches: int = 0
    statuses: Counter = field(default_factory=Counter)  # per-task status from /result/ ("queued", ...)
    http_errors: Counter = field(default_factory=Counter)  # status code -> count
    crashed: bool = False

    def merge(self, other: Summary) -> Summary:
        self.reserved += other.reserved
        self.posted += other.posted
        self.batches += other.batches
        self.statuses.update(other.statuses)
        self.http_errors.update(other.http_errors)
        self.crashed = self.crashed or other.crashed
        return self


class SimWorker:
    def __init__(self, api_url: str, token: str, *, kind: str = "healthy", pipelines=("moth-detector",),
                 batch_size: int = 16, job_ids: list[int] | None = None, until_idle: bool = True,
                 idle_rounds: int = 3, poll_interval: float = 0.1, duration: float | None = None,
                 hold: float = 2.0, heartbeat: bool = False, name: str | None = None,
                 history: History | None = None, on_reserved: Callable[[int, list[dict]], None] | None = None,
                 seed: int | None = None):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.api_url, self.token, self.kind = api_url.rstrip("/"), token, kind
        self.pipelines, self.batch_size, self.job_ids = list(pipelines), batch_size, job_ids
        self.until_idle, self.idle_rounds, self.poll_interval = until_idle, idle_rounds, poll_interval
        self.duration, self.hold, self.heartbeat = duration, hold, heartbeat
        self.name = name or f"{kind}-{id(self) % 10_000}"
        self.history = history if history is not None else History()
        self.on_reserved = on_reserved
        self.random = random.Random(seed)
        self.stop = asyncio.Event()
        self.summary = Summary()

    async def run(self) -> Summary:
        deadline = None if self.duration is None else time.monotonic() + self.duration
        idle = 0
        async with httpx.AsyncClient(base_url=self.api_url, timeout=30,
                                     headers={"Authorization": f"Token {self.token}"}) as http:
            self.http = http
            while not self.stop.is_set() and (deadline is None or time.monotonic() < deadline):
                worked = False
                for job_id in await self.jobs():
                    tasks = await self.reserve(job_id)
                    if tasks:
                        worked = True
                        if not await self.handle(job_id, tasks):
                            self.summary.crashed = True
                            return self.summary
                idle = 0 if worked else idle + 1
                if self.until_idle and idle >= self.idle_rounds:
                    break
                if not worked:
                    await asyncio.sleep(self.poll_interval)
        return self.summary

    async def _call(self, f: str, method: str, url: str, value=None, **kwargs) -> httpx.Response | None:
        self.history.append(self.name, f, "invoke", value)
        try:
            response = await self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self.history.append(self.name, f, "info", repr(exc))  # a POST may or may not have landed
            return None
        if response.status_code >= 400:
            self.summary.http_errors[response.status_code] += 1
            self.history.append(self.name, f, "fail", {"status": response.status_code, "job": value})
            if response.status_code == 503:
                await asyncio.sleep(min(float(response.headers.get("Retry-After", 1)), 5.0))
            return None
        return response

    async def jobs(self) -> list[int]:
        if self.job_ids is not None:
            return list(self.job_ids)
        params = {"pipeline__slug__in": ",".join(self.pipelines), "ids_only": 1, "incomplete_only": 1,
                  "dispatch_mode": "async_api", "limit": 100}
        response = await self._call("list", "GET", "/jobs", params=params)
        if response is None:
            return []
        ids = [item["id"] for item in response.json()["results"]]
        self.history.append(self.name, "list", "ok", ids)
        return ids

    async def reserve(self, job_id: int) -> list[dict]:
        response = await self._call("reserve", "POST", f"/jobs/{job_id}/tasks/", job_id,
                                    json={"batch_size": self.batch_size})
        if response is None:
            return []
        tasks = response.json()["tasks"]
        self.history.append(self.name, "reserve", "ok", {"job": job_id, "reply_subjects": [t["reply_subject"] for t in tasks]})
        if tasks:
            self.summary.reserved += len(tasks)
            self.summary.batches += 1
            if self.on_reserved:
                self.on_reserved(job_id, tasks)
        return tasks

    async def handle(self, job_id: int, tasks: list[dict]) -> bool:
        """Process one batch; False means this worker died."""
        if self.kind == "crash-after-reserve":
            return False
        if self.kind == "slow":
            await self.hold_batch(job_id, tasks)
        if self.kind == "poison":
            results = [{"reply_subject": t["reply_subject"], "result": error_result(t, "poison image")} for t in tasks]
        else:
            results = [{"reply_subject": t["reply_subject"], "result": success_result(t, rng=self.random)}
                       for t in tasks]
        await self.post(job_id, results)
        if self.kind == "duplicate":
            await self.post(job_id, results)
        return True

    async def hold_batch(self, job_id: int, tasks: list[dict]) -> None:
        end = time.monotonic() + self.hold
        subjects = [t["reply_subject"] for t in tasks]
        while (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(left, self.hold / 4 if self.heartbeat else left))
            if self.heartbeat and end - time.monotonic() > 0:
                await self._call("heartbeat", "POST", f"/jobs/{job_id}/tasks/in_progress/", job_id,
                                 json={"reply_subjects": subjects})

    async def post(self, job_id: int, results: list[dict]) -> None:
        response = await self._call("post", "POST", f"/jobs/{job_id}/result/", job_id, json={"results": results})
        if response is None:
            return
        answer = response.json()
        self.summary.posted += len(results)
        self.summary.statuses.update(t["status"] for t in answer.get("tasks", []))
        self.history.append(self.name, "post", "ok", {"job": job_id, "queued": answer.get("results_queued")})


async def run_workers(api_url: str, token: str, kind: str = "healthy", count: int = 1, **kwargs) -> Summary:
    """Run `count` workers of one kind concurrently until they are idle (or their duration ends)."""
    history = kwargs.pop("history", None) or History()
    workers = [SimWorker(api_url, token, kind=kind, name=f"{kind}-{i}", history=history, **kwargs)
               for i in range(count)]
    summaries = await asyncio.gather(*(w.run() for w in workers))
    total = Summary()
    for summary in summaries:
        total.merge(summary)
    return total
