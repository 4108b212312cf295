"""Simulated workers with the AMI Data Companion's loop, one behaviour (WorkerKind) each.

The loop, as the real worker runs it: list jobs → for each job, reserve batches until it hands out nothing →
post one result body per batch → when no job had work, sleep and list again. The kinds are what a real
deployment sees: healthy; crash-after-reserve (reserves a batch, then dies without posting); slow (holds
each batch for `hold`, default 2 × ack_wait, optionally sending the sandbox's in_progress heartbeat every
ack_wait / 2); poison (error results only); duplicate (posts every batch twice).

Workers only record (see client.py); `run()` returns a Summary of what they saw, for tests to assert on.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum

import httpx

from harness.history import History
from harness.workers.client import WorkerClient
from harness.workers.protocol import Task, error_result, success_result, task_result


class WorkerKind(StrEnum):
    HEALTHY = "healthy"
    CRASH_AFTER_RESERVE = "crash-after-reserve"
    SLOW = "slow"
    POISON = "poison"
    DUPLICATE = "duplicate"

    @classmethod
    def parse(cls, value: str) -> WorkerKind:
        """Accepts the value or its underscore spelling ("crash_after_reserve")."""
        try:
            return cls(str(value).replace("_", "-"))
        except ValueError:
            raise ValueError(f"kind must be one of {KINDS}, got {value!r}") from None


KINDS = tuple(kind.value for kind in WorkerKind)
POISON_MESSAGE = "poison image: the simulated worker cannot process it"


@dataclass
class Summary:
    workers: int = 1
    reserved: int = 0  # tasks handed out to this worker
    batches: int = 0  # non-empty reservations
    posted: int = 0  # results in POSTs the server answered 2xx (a duplicate worker counts both)
    statuses: Counter = field(default_factory=Counter)  # per-result status from /result/ ("queued", ...)
    http_errors: Counter = field(default_factory=Counter)  # status code -> count
    invalid_responses: int = 0  # 2xx answers the real worker's models reject
    heartbeats: int = 0  # accepted in_progress calls
    abandoned: int = 0  # reserved tasks never answered because the worker was stopped mid-batch
    crashed: bool = False

    def merge(self, other: Summary) -> Summary:
        self.workers += other.workers
        for name in ("reserved", "batches", "posted", "invalid_responses", "heartbeats", "abandoned"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.statuses.update(other.statuses)
        self.http_errors.update(other.http_errors)
        self.crashed = self.crashed or other.crashed
        return self

    @classmethod
    def total(cls, summaries: Iterable[Summary]) -> Summary:
        total = cls(workers=0)
        for summary in summaries:
            total.merge(summary)
        return total

    def to_dict(self) -> dict:
        return {**asdict(self), "statuses": dict(self.statuses),
                "http_errors": {str(code): n for code, n in self.http_errors.items()}}


OnReserved = Callable[[str, int, list[dict]], None]  # (worker name, job id, tasks as dicts)


class SimWorker:
    def __init__(self, api_url: str, token: str, *, kind: str = "healthy",
                 pipelines: Iterable[str] = ("moth-detector",), batch_size: int = 16,
                 job_ids: Iterable[int] | None = None, until_idle: bool = True, idle_rounds: int = 3,
                 poll_interval: float = 0.1, duration: float | None = None, max_tasks: int | None = None,
                 ack_wait: float = 30.0, hold: float | None = None, heartbeat: bool = False,
                 detections: int = 1, auth_scheme: str = "Token", transport: httpx.AsyncBaseTransport | None = None,
                 name: str | None = None, history: History | None = None, on_reserved: OnReserved | None = None,
                 seed: int | None = None):
        if batch_size < 1 or idle_rounds < 1 or poll_interval < 0 or ack_wait <= 0 or detections < 0:
            raise ValueError("need batch_size >= 1, idle_rounds >= 1, poll_interval >= 0, ack_wait > 0, "
                             "detections >= 0")
        if max_tasks is not None and max_tasks < 1:
            raise ValueError("max_tasks must be at least 1 (or None for no limit)")
        self.api_url, self.token, self.kind = api_url, token, WorkerKind.parse(kind)
        self.pipelines, self.batch_size = list(pipelines), batch_size
        self.job_ids = None if job_ids is None else list(job_ids)
        self.until_idle, self.idle_rounds, self.poll_interval = until_idle, idle_rounds, poll_interval
        self.duration, self.max_tasks, self.detections = duration, max_tasks, detections
        self.ack_wait, self.heartbeat = ack_wait, heartbeat
        self.hold = 2 * ack_wait if hold is None else hold
        self.auth_scheme, self.transport, self.on_reserved = auth_scheme, transport, on_reserved
        self.name = name or f"{self.kind.value}-{id(self) % 10_000}"
        self.history = history if history is not None else History()
        self.random = random.Random(seed)
        self.stop = asyncio.Event()  # set it (from the worker's loop) to end run() at the next step
        self.summary = Summary()
        self._deadline: float | None = None
        self._finished = False  # crashed, or max_tasks reached
        self._pipeline_of: dict[int, str] = {}

    # --- the loop ---------------------------------------------------------------------------------------------

    async def run(self) -> Summary:
        self._deadline = None if self.duration is None else time.monotonic() + self.duration
        self.client = WorkerClient(self.api_url, self.token, self.name, self.history,
                                   auth_scheme=self.auth_scheme, sleep=self._pause, transport=self.transport)
        idle = 0
        try:
            while self._running():
                worked = False
                for job in await self._jobs():
                    if not self._running():
                        break
                    worked = await self._drain(job) or worked
                idle = 0 if worked else idle + 1
                if self.until_idle and idle >= self.idle_rounds:
                    break
                if not worked:
                    await self._pause(self.poll_interval)
        finally:
            errors = self.client.errors
            self.summary.invalid_responses = errors.pop("invalid", 0)
            self.summary.http_errors.update(errors)
            await self.client.aclose()
        return self.summary

    async def _jobs(self) -> list[int]:
        if self.job_ids is not None:
            return list(self.job_ids)
        listed = await self.client.list_jobs(self.pipelines)
        self._pipeline_of.update({item.id: item.pipeline_slug for item in listed})
        return [item.id for item in listed]

    async def _drain(self, job: int) -> bool:
        """Reserve and handle batches until the job hands out nothing (or a call fails). True if any work."""
        worked = False
        while self._running():
            size = self.batch_size if self.max_tasks is None else min(self.batch_size,
                                                                      self.max_tasks - self.summary.reserved)
            tasks = await self.client.reserve(job, size)
            if not tasks:  # drained, or the call failed: back to the job list, as the real worker does
                break
            worked = True
            self.summary.reserved += len(tasks)
            self.summary.batches += 1
            if self.on_reserved is not None:
                self.on_reserved(self.name, job, [task.model_dump() for task in tasks])
            await self._handle(job, tasks)
            if self.max_tasks is not None and self.summary.reserved >= self.max_tasks:
                self._finished = True
        return worked

    async def _handle(self, job: int, tasks: list[Task]) -> None:
        subjects = [task.reply_subject for task in tasks]
        if self.kind is WorkerKind.CRASH_AFTER_RESERVE:
            self.history.append(self.name, "crash", "info", {"job": job, "reply_subjects": subjects})
            self.summary.crashed, self._finished = True, True
            return
        if self.kind is WorkerKind.SLOW and not await self._hold(job, tasks):
            self.history.append(self.name, "abandon", "info", {"job": job, "reply_subjects": subjects})
            self.summary.abandoned += len(tasks)
            return
        results = [task_result(task, self._result(job, task)) for task in tasks]
        await self._post(job, results)
        if self.kind is WorkerKind.DUPLICATE:
            await self._post(job, results)

    def _result(self, job: int, task: Task) -> dict:
        if self.kind is WorkerKind.POISON:
            return error_result(task, POISON_MESSAGE)
        pipeline = self._pipeline_of.get(job) or (self.pipelines[0] if self.pipelines else "unknown")
        return success_result(task, pipeline, detections=self.detections, rng=self.random)

    async def _hold(self, job: int, tasks: list[Task]) -> bool:
        """Keep the batch for `hold` seconds, heartbeating if told to. False if stopped before the end."""
        end = time.monotonic() + self.hold
        subjects = [task.reply_subject for task in tasks if task.reply_subject is not None]
        while (left := end - time.monotonic()) > 0:
            if not await self._pause(min(left, self.ack_wait / 2) if self.heartbeat else left):
                return False
            if self.heartbeat and end - time.monotonic() > 0 and await self.client.in_progress(job, subjects):
                self.summary.heartbeats += 1
        return True

    async def _post(self, job: int, results: list[dict]) -> None:
        answer = await self.client.post_results(job, results)
        if answer is None:
            return  # the real worker drops the results for good; NATS must redeliver
        self.summary.posted += len(results)
        if answer.tasks:
            self.summary.statuses.update(task.status for task in answer.tasks)
        else:  # an answer without per-result statuses (the real worker does not need them)
            self.summary.statuses["queued"] += answer.results_queued

    # --- stopping -----------------------------------------------------------------------------------------

    def _running(self) -> bool:
        return not (self._finished or self.stop.is_set()
                    or (self._deadline is not None and time.monotonic() >= self._deadline))

    async def _pause(self, seconds: float) -> bool:
        """Sleep, waking early on stop or at the deadline. True if the worker should go on."""
        if self._deadline is not None:
            seconds = min(seconds, max(0.0, self._deadline - time.monotonic()))
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)
        except TimeoutError:
            pass
        return self._running()


async def run_workers(api_url: str, token: str, kind: str = "healthy", count: int = 1, *,
                      stop: asyncio.Event | threading.Event | None = None, duration: float | None = None,
                      history: History | None = None, name_prefix: str | None = None, seed: int | None = None,
                      **options) -> Summary:
    """Run `count` workers of one kind concurrently until each is idle (with until_idle), the `duration`
    deadline passes, or `stop` is set (an asyncio.Event of this loop, or a threading.Event set from any
    thread). Returns their summaries merged; options are SimWorker's."""
    history = history if history is not None else History()
    prefix = name_prefix or WorkerKind.parse(kind).value
    workers = [SimWorker(api_url, token, kind=kind, name=f"{prefix}-{i}", history=history, duration=duration,
                         seed=None if seed is None else seed + i, **options) for i in range(count)]
    relay = asyncio.create_task(_relay_stop(stop, workers)) if stop is not None else None
    try:
        summaries = await asyncio.gather(*(worker.run() for worker in workers))
    finally:
        if relay is not None:
            relay.cancel()
    return Summary.total(summaries)


async def _relay_stop(stop: asyncio.Event | threading.Event, workers: list[SimWorker]) -> None:
    if isinstance(stop, asyncio.Event):
        await stop.wait()
    else:
        while not stop.is_set():
            await asyncio.sleep(0.05)
    for worker in workers:
        worker.stop.set()
