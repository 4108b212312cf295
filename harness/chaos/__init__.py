"""The nemesis: faults registered by verb name, each an inject + heal pair, recorded on the timeline."""

from __future__ import annotations

import time

from harness.chaos.base import Fault, FaultTarget, LocalTarget, RemoteTarget
from harness.chaos.cluster_faults import CLUSTER_FAULTS
from harness.chaos.job_faults import JOB_FAULTS
from harness.chaos.process_faults import PROCESS_FAULTS

FAULTS: dict[str, type[Fault]] = {fault.verb: fault for fault in (*PROCESS_FAULTS, *JOB_FAULTS, *CLUSTER_FAULTS)}


class Nemesis:
    """Injects faults on a target and remembers which are still active, so heal_all can end them all."""

    def __init__(self, target: FaultTarget):
        self.target = target
        self.active: list[tuple[str, Fault]] = []

    def inject(self, verb: str, **args) -> dict:
        if verb not in FAULTS:
            raise KeyError(f"unknown fault {verb!r}; known: {', '.join(FAULTS)}")
        fault, history = FAULTS[verb](), self.target.history
        value = {"fault": verb, **args}
        history.append("nemesis", "inject", "invoke", value)
        self.active.append((verb, fault))  # even a half-done inject gets healed
        try:
            result = fault.inject(self.target, **args) or {}
        except Exception as exc:
            history.append("nemesis", "inject", "fail", {**value, "error": repr(exc)})
            raise
        history.append("nemesis", "inject", "ok", {**value, **result})
        if fault.timed:
            time.sleep(float(args.get("seconds", 0)))
            self.heal(verb, fault)
        return result

    def heal(self, verb: str, fault: Fault) -> None:
        history = self.target.history
        if (verb, fault) in self.active:
            self.active.remove((verb, fault))
        history.append("nemesis", "heal", "invoke", {"fault": verb})
        try:
            result = fault.heal(self.target) or {}
        except Exception as exc:
            history.append("nemesis", "heal", "fail", {"fault": verb, "error": repr(exc)})
            raise
        history.append("nemesis", "heal", "ok", {"fault": verb, **result})

    def heal_all(self) -> list[str]:
        """Heal every active fault, newest first; returns the errors (healing goes on past one)."""
        errors = []
        while self.active:
            verb, fault = self.active[-1]
            try:
                self.heal(verb, fault)
            except Exception as exc:
                errors.append(f"{verb}: {exc!r}")
        return errors


__all__ = ["FAULTS", "Fault", "LocalTarget", "Nemesis", "RemoteTarget", "FaultTarget"]
