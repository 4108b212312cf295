"""An asyncio swarm of well-behaved workers draining one job as fast as the API lets it."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable

import httpx


class Swarm:
    def __init__(self, api_url: str, token: str, job_id: int, images: int, concurrency: int,
                 make_result: Callable[[dict], dict], batch_size: int = 16, timeout: float = 600):
        self.api_url, self.token, self.job_id, self.images = api_url, token, job_id, images
        self.concurrency, self.make_result, self.batch_size = concurrency, make_result, batch_size
        self.timeout = timeout
        self.posted = 0
        self.latencies: dict[str, list[float]] = defaultdict(list)  # call kind -> seconds
        self.began_unix = 0.0

    async def run(self) -> float:
        """Seconds from the first /tasks/ call until every task's result POST has returned."""
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(base_url=self.api_url, timeout=60, limits=limits,
                                     headers={"Authorization": f"Token {self.token}"}) as http:
            self.began_unix, began = time.time(), time.perf_counter()
            await asyncio.wait_for(asyncio.gather(*(self._worker(http) for _ in range(self.concurrency))),
                                   self.timeout)
            return time.perf_counter() - began

    async def _worker(self, http: httpx.AsyncClient) -> None:
        while self.posted < self.images:
            began = time.perf_counter()
            response = await http.post(f"/jobs/{self.job_id}/tasks/", json={"batch_size": self.batch_size})
            response.raise_for_status()
            tasks = response.json()["tasks"]
            kind = "full" if len(tasks) == self.batch_size else "partial" if tasks else "empty"
            self.latencies[f"/tasks/ ({kind})"].append(time.perf_counter() - began)
            if not tasks:
                continue  # the others still hold tasks; their results may free nothing, so keep asking
            results = [{"reply_subject": t["reply_subject"], "result": self.make_result(t)} for t in tasks]
            began = time.perf_counter()
            response = await http.post(f"/jobs/{self.job_id}/result/", json={"results": results})
            response.raise_for_status()
            self.latencies["/result/"].append(time.perf_counter() - began)
            self.posted += len(tasks)
