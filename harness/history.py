"""An append-only operation log, Jepsen style: every client call is an invoke followed by ok/fail/info."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Op:
    time: float  # unix seconds
    process: str  # who acted (worker name, "nemesis", "client")
    f: str  # what: list | reserve | post | heartbeat | fault | ...
    type: str  # invoke | ok | fail | info (info: outcome unknown, e.g. a timed-out POST)
    value: Any = None


@dataclass
class History:
    ops: list[Op] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def append(self, process: str, f: str, type: str, value: Any = None) -> Op:
        op = Op(time.time(), process, f, type, value)
        with self._lock:
            self.ops.append(op)
        return op

    def of(self, f: str | None = None, type: str | None = None) -> list[Op]:
        with self._lock:
            return [op for op in self.ops if (f is None or op.f == f) and (type is None or op.type == type)]

    def to_jsonl(self, path: str | Path) -> None:
        with open(path, "w") as out, self._lock:
            for op in self.ops:
                out.write(json.dumps(asdict(op), default=str) + "\n")
