"""An asyncio swarm of well-behaved workers draining one job as fast as the API lets it."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable

import httpx

from fixes.layout import parse_reply_subject

FINAL = ("SUCCESS", "FAILURE", "REVOKED")


class Swarm:
    """`concurrency` workers, each looping POST /tasks/ {"batch_size"} → POST /result/ (one result per task).

    By default a worker stops once results for `images` tasks have been posted (the job's Celery side may still
    be working). until_final=True: the workers keep polling until the job is final, as a real worker does, so
    tasks handed out again (a redelivery) are answered again. Either way the swarm records which delivery of
    each image it was handed (from the reply subjects): `redelivered` counts tasks handed out more than once,
    `lost` the deliveries no worker ever saw (a gap in an image's delivery numbers)."""

    def __init__(self, api_url: str, token: str, job_id: int, images: int, concurrency: int,
                 make_result: Callable[[dict], dict], batch_size: int = 16, timeout: float = 600,
                 until_final: bool = False, status_poll: float = 0.2):
        self.api_url, self.token, self.job_id, self.images = api_url, token, job_id, images
        self.concurrency, self.make_result, self.batch_size = concurrency, make_result, batch_size
        self.timeout, self.until_final, self.status_poll = timeout, until_final, status_poll
        self.posted = 0
        self.latencies: dict[str, list[float]] = defaultdict(list)  # call kind -> seconds
        self.deliveries: dict[str, list[int]] = defaultdict(list)  # image id -> delivery numbers handed out
        self.began_unix = 0.0
        self.final: str | None = None  # the job's final status (until_final)

    @property
    def handed_out(self) -> int:
        return sum(len(seen) for seen in self.deliveries.values())

    @property
    def redelivered(self) -> int:
        return sum(1 for seen in self.deliveries.values() for n in seen if n > 1)

    @property
    def lost(self) -> int:
        return sum(max(seen) - len(set(seen)) for seen in self.deliveries.values())

    async def run(self) -> float:
        """Seconds from the first /tasks/ call until every task's result POST has returned (until_final: until
        the job was seen final)."""
        connections = self.concurrency + (1 if self.until_final else 0)  # the status watcher has its own
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(base_url=self.api_url, timeout=60, limits=limits,
                                     headers={"Authorization": f"Token {self.token}"}) as http:
            self.began_unix, began = time.time(), time.perf_counter()
            workers = [self._worker(http) for _ in range(self.concurrency)]
            if self.until_final:
                workers.append(self._watch(http))
            await asyncio.wait_for(asyncio.gather(*workers), self.timeout)
            return time.perf_counter() - began

    def _working(self) -> bool:
        return self.final is None if self.until_final else self.posted < self.images

    async def _watch(self, http: httpx.AsyncClient) -> None:
        while self.final is None:
            response = await http.get(f"/jobs/{self.job_id}/")
            response.raise_for_status()
            if response.json()["status"] in FINAL:
                self.final = response.json()["status"]
            else:
                await asyncio.sleep(self.status_poll)

    async def _worker(self, http: httpx.AsyncClient) -> None:
        while self._working():
            began = time.perf_counter()
            response = await http.post(f"/jobs/{self.job_id}/tasks/", json={"batch_size": self.batch_size})
            response.raise_for_status()
            tasks = response.json()["tasks"]
            kind = "full" if len(tasks) == self.batch_size else "partial" if tasks else "empty"
            self.latencies[f"/tasks/ ({kind})"].append(time.perf_counter() - began)
            if not tasks:
                continue  # the others still hold tasks; their results may free nothing, so keep asking
            for task in tasks:
                delivery = parse_reply_subject(task["reply_subject"]).num_delivered
                self.deliveries[str(task["image_id"])].append(delivery)
            results = [{"reply_subject": t["reply_subject"], "result": self.make_result(t)} for t in tasks]
            began = time.perf_counter()
            response = await http.post(f"/jobs/{self.job_id}/result/", json={"results": results})
            response.raise_for_status()
            self.latencies["/result/"].append(time.perf_counter() - began)
            self.posted += len(tasks)
