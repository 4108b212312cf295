"""Poll until a condition holds or a deadline passes — the harness's only way of waiting."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def slowdown() -> float:
    """How much slower than the development machine this one runs (CHAOS_SLOWDOWN, `--chaos-slowdown`; 1 by
    default): timing-derived bounds and heartbeat periods are scaled by it, never tuned to an idle box."""
    value = float(os.environ.get("CHAOS_SLOWDOWN") or 1.0)
    if value < 1.0:
        raise ValueError(f"CHAOS_SLOWDOWN must be >= 1, got {value}")
    return value


class Timeout(AssertionError):
    pass


def poll_until(check: Callable[[], T], timeout: float, interval: float = 0.05, what: str = "condition") -> T:
    """Call `check` until it returns something truthy; return that. Raises Timeout with `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise Timeout(f"{what} not reached within {timeout}s (last value: {value!r})")
        time.sleep(interval)
