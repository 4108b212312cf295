"""TCP proxies the harness puts on a cluster's route connections, so that one node can be cut off and healed.

Every proxy listens on a loopback port and forwards to one node's cluster port. `cut()` closes the
connections it carries and refuses new ones (each is closed as soon as it is accepted); `mend()` lets them
through again. All proxies of a RouteProxies run on one event loop in a daemon thread of this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from harness.infra.base import free_port

CHUNK = 65536


class Proxy:
    """host:listen_port -> host:target_port, cut or through."""

    def __init__(self, host: str, target_port: int):
        self.host, self.target_port = host, target_port
        self.listen_port = free_port(host)
        self.is_cut = False
        self.connections = 0  # carried since start: tells a test the route really went through
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.listen_port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self._drop_all()
        if self._server is not None:
            await self._server.wait_closed()

    def cut(self) -> None:
        self.is_cut = True
        self._drop_all()

    def mend(self) -> None:
        self.is_cut = False

    def _drop_all(self) -> None:
        for writer in list(self._writers):
            _abort(writer)
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.is_cut:
            _abort(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            _abort(writer)
            return
        self.connections += 1
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        finally:
            for end in (writer, up_writer):
                self._writers.discard(end)
                _abort(end)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, RuntimeError):
            while not self.is_cut and (data := await reader.read(CHUNK)):
                writer.write(data)
                await writer.drain()
        _abort(writer)


def _abort(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.transport.abort()  # a reset, like a peer that vanished: no graceful close to wait for


class RouteProxies:
    """The proxies of one cluster, on their own loop thread. add() before start(); cut/mend from any thread."""

    def __init__(self):
        self.proxies: list[Proxy] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def add(self, host: str, target_port: int) -> Proxy:
        proxy = Proxy(host, target_port)
        self.proxies.append(proxy)
        if self._loop is not None:
            self._call(proxy.open())
        return proxy

    def start(self) -> RouteProxies:
        if self._loop is not None:
            return self
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="route-proxies", daemon=True)
        self._thread.start()
        for proxy in self.proxies:
            self._call(proxy.open())
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        for proxy in self.proxies:
            self._call(proxy.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = self._thread = None

    def cut(self, proxies: list[Proxy]) -> None:
        self._call(_each(proxies, Proxy.cut))

    def mend(self, proxies: list[Proxy]) -> None:
        self._call(_each(proxies, Proxy.mend))

    def _call(self, coroutine) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)


async def _each(proxies: list[Proxy], action) -> None:
    for proxy in proxies:
        action(proxy)
