"""Targets: the system under test. `sandbox` (our Django mirror of Antenna) or `antenna:PATH` (a real checkout).

    spec = TargetSpec.parse("antenna:~/src/antenna")   # or None: CHAOS_TARGET, else the sandbox
    target = spec.build({"CHAOS_FIXES": "on", "CHAOS_ACK_WAIT": "1"})
    with target: ...
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.targets.base import Records, Target

__all__ = ["Records", "Target", "TargetSpec", "default_antenna_checkout"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class TargetSpec:
    kind: str  # "sandbox" | "antenna"
    checkout: Path | None = None  # an Antenna checkout (its backend: manage.py, ami/, config/)

    @classmethod
    def parse(cls, text: str | None = None) -> TargetSpec:
        """"sandbox", "antenna:PATH" or "antenna" (the checkout next to this project, as CI lays it out);
        None reads CHAOS_TARGET, else the sandbox."""
        text = (text if text is not None else os.environ.get("CHAOS_TARGET", "")).strip() or "sandbox"
        kind, _, path = text.partition(":")
        if kind == "sandbox" and not path:
            return cls("sandbox")
        if kind != "antenna":
            raise ValueError(f"unknown target {text!r}: use 'sandbox' or 'antenna:PATH'")
        checkout = Path(path).expanduser().resolve() if path else default_antenna_checkout()
        if checkout is None or not (checkout / "manage.py").exists() or not (checkout / "ami").is_dir():
            raise ValueError(f"{text!r}: {checkout or 'no path'} is not an Antenna backend checkout "
                             "(no manage.py and ami/)")
        return cls("antenna", checkout)

    def __str__(self) -> str:
        return self.kind if self.checkout is None else f"{self.kind}:{self.checkout}"

    def build(self, settings: Mapping[str, object] | None = None, **options) -> Target:
        """A target that is not started yet. Fixes on, for Antenna: a patched copy of the checkout (the PR
        applied), never the checkout itself."""
        from harness.infra.stack import Stack
        from harness.settings import RunSettings

        if self.kind == "sandbox":
            return Stack(settings=settings, **options)
        from harness.targets.antenna.stack import AntennaStack

        normalized = RunSettings.of(settings)
        patched = None
        if normalized.fixes:
            from harness.targets.antenna.checkout import prepare

            patched = prepare(self.checkout, True)
        return AntennaStack(self.checkout, settings=normalized.env(), fixes_checkout=patched, **options)


def default_antenna_checkout() -> Path | None:
    """The snapshot CI provides beside the project (../shared/targets/antenna), when it is there."""
    candidate = PROJECT_ROOT.parent / "shared" / "targets" / "antenna"
    return candidate if (candidate / "manage.py").exists() else None
