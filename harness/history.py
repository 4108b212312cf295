"""An append-only operation log, Jepsen style: every client call is an invoke followed by ok/fail/info.

Clients only record what they did and what they were told; checkers judge the log later. `info` means the
outcome is unknown (a timed-out POST may or may not have landed), `fail` that it certainly did not happen.
Observers record too: the sampler's `sample` and `status` ops, and `sample-error` for a read that failed
(its gaps are evidence: a checker of sampled data cannot pass over a misread).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

OP_TYPES = ("invoke", "ok", "fail", "info")


@dataclass(frozen=True)
class Op:
    time: float  # unix seconds
    process: str  # who acted (worker name, "nemesis", "client")
    f: str  # what: list | reserve | post | heartbeat | inject | sample | sample-error | ...
    type: str  # invoke | ok | fail | info (info: outcome unknown, e.g. a timed-out POST)
    value: Any = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)


@dataclass
class History:
    """Thread-safe and append-only. `stream_to(path)` also writes each op as a JSON line the moment it is
    appended, so the log of a process that is SIGKILLed survives up to its last op."""

    ops: list[Op] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _sink: IO[str] | None = field(default=None, repr=False)

    def append(self, process: str, f: str, type: str, value: Any = None) -> Op:
        if type not in OP_TYPES:
            raise ValueError(f"op type must be one of {OP_TYPES}, got {type!r}")
        with self._lock:
            op = Op(time.time(), process, f, type, value)
            self.ops.append(op)
            if self._sink is not None:
                self._sink.write(op.to_json() + "\n")
                self._sink.flush()
        return op

    def extend(self, ops: Iterable[Op]) -> None:
        """Merge ops recorded elsewhere (e.g. by a worker subprocess), keeping the log in time order."""
        with self._lock:
            self.ops.extend(ops)
            self.ops.sort(key=lambda op: op.time)

    def of(self, f: str | None = None, type: str | None = None) -> list[Op]:
        with self._lock:
            return [op for op in self.ops if (f is None or op.f == f) and (type is None or op.type == type)]

    def __len__(self) -> int:
        return len(self.ops)

    def __iter__(self) -> Iterator[Op]:
        with self._lock:
            return iter(list(self.ops))

    def to_jsonl(self, path: str | Path) -> None:
        with open(path, "w") as out, self._lock:
            for op in self.ops:
                out.write(op.to_json() + "\n")

    def stream_to(self, path: str | Path) -> None:
        """From now on, append every op to `path` as it is recorded (ops already held are written first)."""
        with self._lock:
            self._sink = open(path, "a")  # noqa: SIM115 - kept open for the history's lifetime
            for op in self.ops:
                self._sink.write(op.to_json() + "\n")
            self._sink.flush()

    def close(self) -> None:
        with self._lock:
            if self._sink is not None:
                self._sink.close()
                self._sink = None

    @classmethod
    def from_jsonl(cls, path: str | Path) -> History:
        """Read a log written by to_jsonl or stream_to; a torn last line (writer killed mid-write) is skipped."""
        ops = []
        with open(path) as lines:
            for line in lines:
                try:
                    ops.append(Op(**json.loads(line)))
                except (json.JSONDecodeError, TypeError):
                    continue
        return cls(ops=ops)
