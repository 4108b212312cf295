"""Sync facade over JobQueue for Django views and Celery tasks.

One daemon thread runs an asyncio loop holding one persistent NATS connection per process. The connection
reconnects forever in the background while calls fail fast with QueueUnavailable. After a fork (gunicorn,
Celery prefork) the child lazily starts its own thread and connection; the parent's are never touched.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import TypeVar

from fixes.jetstream.errors import QueueUnavailable
from fixes.jetstream.queue import JobQueue
from fixes.layout import QueueLayout

T = TypeVar("T")
RECONNECT_WAIT = 0.5
_bridges: weakref.WeakSet[NatsBridge] = weakref.WeakSet()
_orphans: list = []  # a parent's loop/thread/connection seen in a child: kept, never used or closed


class NatsBridge:
    def __init__(self, url: str, layout: QueueLayout, connect_timeout: float = 2.0, **nats_options):
        self.url, self.layout, self.connect_timeout, self._options = url, layout, connect_timeout, nats_options
        self._lock, self._closed = threading.Lock(), False
        self._forget()
        _bridges.add(self)

    def _forget(self) -> None:
        self._pid = self._loop = self._thread = self._queue = self._ready = self._connector = None
        self._started_at = 0.0

    def _after_fork(self) -> None:
        if self._loop is not None:
            _orphans.append((self._loop, self._thread, self._queue, self._connector))
        self._lock = threading.Lock()  # the parent's lock may have been held by another thread at fork time
        self._forget()

    @property
    def is_connected(self) -> bool:
        return self._pid == os.getpid() and self._queue is not None and self._queue.is_connected

    def call(self, fn: Callable[[JobQueue], Awaitable[T]], timeout: float = 5.0) -> T:
        """Run `fn(queue)` on the bridge's loop and return its result.

        Raises QueueUnavailable when NATS is not connected (at once, except right after start-up, when the
        first connect gets up to connect_timeout) or when the call takes longer than `timeout`.
        """
        return self.begin(fn, timeout)()

    def begin(self, fn: Callable[[JobQueue], Awaitable[T]], timeout: float = 5.0) -> Callable[[], T]:
        """call() in two halves: `fn(queue)` starts now; the returned function waits for its result (or raises
        its error). Meanwhile the calling thread may do other I/O."""
        loop = self._start()  # first: raises for a closed bridge before a coroutine exists
        future = asyncio.run_coroutine_threadsafe(self._run(fn, timeout), loop)

        def result() -> T:
            try:
                return future.result(timeout + 1.0)  # the loop enforces `timeout`; this guards against a wedged loop
            except concurrent.futures.TimeoutError as exc:
                future.cancel()
                raise QueueUnavailable(f"NATS call took longer than {timeout}s") from exc

        return result

    async def _run(self, fn: Callable[[JobQueue], Awaitable[T]], timeout: float) -> T:
        queue, ready = self._queue, self._ready
        if queue is None and ready is not None:  # only calls right after start-up wait for the first connect
            grace = self._started_at + self.connect_timeout - time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), max(0.0, min(grace, timeout)))
            queue = self._queue
        if queue is None or not queue.is_connected:
            raise QueueUnavailable(f"not connected to NATS at {self.url}")
        try:
            return await asyncio.wait_for(fn(queue), timeout)
        except TimeoutError as exc:
            raise QueueUnavailable(f"NATS call took longer than {timeout}s") from exc

    def _start(self) -> asyncio.AbstractEventLoop:
        if self._pid == os.getpid() and self._loop is not None:
            return self._loop
        with self._lock:
            if self._closed:
                raise QueueUnavailable("NATS bridge is closed")
            if self._pid != os.getpid() and self._loop is not None:
                self._after_fork()  # a fork the at-fork hook did not see
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=_serve, args=(loop,), name="nats-bridge", daemon=True)
                self._thread.start()
                self._ready, self._pid, self._started_at = asyncio.Event(), os.getpid(), time.monotonic()
                self._connector = asyncio.run_coroutine_threadsafe(self._connect(), loop)
                self._loop = loop
            return self._loop

    async def _connect(self) -> None:
        options = {"connect_timeout": self.connect_timeout, "reconnect_time_wait": RECONNECT_WAIT,
                   "max_reconnect_attempts": -1, **self._options}  # -1 also retries the first connect
        while True:
            try:
                self._queue = await JobQueue.connect(self.url, self.layout, **options)
                self._ready.set()
                return
            except QueueUnavailable:
                await asyncio.sleep(RECONNECT_WAIT)

    def close(self, timeout: float = 5.0) -> None:
        """Close the connection and stop the thread. Later calls raise QueueUnavailable."""
        with self._lock:
            self._closed = True
            loop, thread, pid, queue, connector = self._loop, self._thread, self._pid, self._queue, self._connector
            self._forget()
        if loop is None or pid != os.getpid():
            return
        connector.cancel()
        if queue is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(queue.close(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.close()


def _after_fork_in_child() -> None:
    for bridge in list(_bridges):
        bridge._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
