"""Verdict, compose and check_safe: how every checker answers, Jepsen style.

A checker is a pure function of (history, snapshot) that returns a Verdict. ok is True (holds), False
(violated, with evidence) or None (unknown: not enough to tell, or the checker crashed). No evidence is
never a pass: a checker answers True only for what the run's data proves, a vacuous case included when
the data proves it (e.g. the database was read and holds no FAILURE job to ask a reason of).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.history import Op

MAX_SAMPLES = 20

Checker = Callable[[Sequence[Op], dict], "Verdict"]


@dataclass(frozen=True)
class Verdict:
    ok: bool | None
    name: str
    counts: dict[str, Any] = field(default_factory=dict)
    samples: list[Any] = field(default_factory=list)  # at most MAX_SAMPLES pieces of evidence

    def __post_init__(self):
        if len(self.samples) > MAX_SAMPLES:
            object.__setattr__(self, "samples", list(self.samples[:MAX_SAMPLES]))

    @property
    def label(self) -> str:
        return {True: "pass", False: "FAIL", None: "unknown"}[self.ok]

    def to_dict(self) -> dict:
        return {"ok": self.ok, "name": self.name, "counts": self.counts, "samples": self.samples}


def verdict(name: str, violations: list, counts: dict | None = None, unknown: list | None = None) -> Verdict:
    """False if anything was violated, else None if anything could not be judged, else True."""
    counts = {**(counts or {}), "violations": len(violations)}
    if violations:
        return Verdict(False, name, counts, violations)
    if unknown:
        return Verdict(None, name, {**counts, "unknown": len(unknown)}, unknown)
    return Verdict(True, name, counts)


def no_evidence(name: str, why: str, counts: dict | None = None) -> Verdict:
    """Unknown: the run holds nothing this checker could judge (never a pass)."""
    return Verdict(None, name, {**(counts or {}), "evidence": 0}, [why])


def check_safe(name: str, checker: Checker, history: Sequence[Op], snapshot: dict) -> Verdict:
    """Run a checker; a crash becomes ok=None with the traceback as evidence, never an exception."""
    try:
        return checker(history, snapshot)
    except Exception:
        return Verdict(None, name, {"crashed": 1}, [traceback.format_exc(limit=5)])


RANK = {False: 0, None: 1, True: 2}


def compose(verdicts: Iterable[Verdict], name: str = "composed") -> Verdict:
    """False > None > True: one violation fails the whole; one unknown makes it unknown."""
    verdicts = list(verdicts)
    ok = min((v.ok for v in verdicts), key=RANK.__getitem__, default=True)
    counts = {v.name: v.label for v in verdicts}
    samples = [f"{v.name}: {s}" for v in verdicts if v.ok is not True for s in v.samples[:3]]
    return Verdict(ok, name, counts, samples)
