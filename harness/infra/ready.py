"""Readiness probes: each answers "ready yet?"; wait_until_ready() polls one until a deadline."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Callable
from pathlib import Path


class ServiceNotReady(RuntimeError):
    """A service did not become ready in time, or died while starting; carries its last log lines."""


class Probe:
    """check() returns True when ready; an exception listed in `transient` means "not yet"."""

    transient: tuple[type[BaseException], ...] = (OSError,)

    def check(self) -> bool:
        raise NotImplementedError


class PortProbe(Probe):
    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.host, self.port = host, port

    def check(self) -> bool:
        with socket.create_connection((self.host, self.port), timeout=0.5):
            return True

    def __str__(self) -> str:
        return f"TCP {self.host}:{self.port}"


class HttpProbe(Probe):
    """GET a path; any HTTP answer whose status passes `accept` counts (http.client: no proxies)."""

    transient = (OSError, http.client.HTTPException)

    def __init__(self, port: int, path: str = "/", host: str = "127.0.0.1",
                 accept: Callable[[int], bool] = lambda status: status < 500):
        self.host, self.port, self.path, self.accept = host, port, path, accept

    def check(self) -> bool:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=2.0)
        try:
            conn.request("GET", self.path)
            return self.accept(conn.getresponse().status)
        finally:
            conn.close()

    def __str__(self) -> str:
        return f"HTTP GET http://{self.host}:{self.port}{self.path}"


class LogProbe(Probe):
    """Ready once `text` is appended to the log file after this probe was made (logs survive restarts)."""

    def __init__(self, path: Path, text: str):
        self.path, self.text = path, text.encode()
        self._offset = path.stat().st_size if path.exists() else 0
        self._carry = b""

    def check(self) -> bool:
        with open(self.path, "rb") as log:
            log.seek(self._offset)
            chunk = self._carry + log.read()
            self._offset = log.tell()
        self._carry = chunk[-len(self.text):]
        return self.text in chunk

    def __str__(self) -> str:
        return f"log line containing {self.text.decode()!r}"


class CallableProbe(Probe):
    def __init__(self, check: Callable[[], bool], description: str = "callable",
                 transient: tuple[type[BaseException], ...] = (Exception,)):
        self._check, self.description, self.transient = check, description, transient

    def check(self) -> bool:
        return bool(self._check())

    def __str__(self) -> str:
        return self.description


def wait_until_ready(probe: Probe, *, timeout: float, interval: float = 0.05, name: str = "service",
                     alive: Callable[[], bool] = lambda: True,
                     logs: Callable[..., str] = lambda tail: "") -> None:
    """Poll `probe` until it passes; raise ServiceNotReady on timeout or if `alive()` turns False."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            if probe.check():
                return
        except probe.transient as error:
            last_error = error
        if not alive():
            problem = "exited while starting"
            break
        if time.monotonic() >= deadline:
            problem = f"not ready after {timeout:.1f}s"
            break
        time.sleep(interval)
    detail = f" (last error: {last_error!r})" if last_error else ""
    raise ServiceNotReady(f"{name} {problem}; waited for {probe}{detail}\n"
                          f"--- last 50 log lines ---\n{logs(tail=50)}")
