"""Fixtures for a real Antenna checkout as the target: `antenna_factory(fixes="off", ack_wait=1)`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.pytest_plugin.fixtures import chaos_settings


def _checkout(config) -> tuple[Path | None, str]:
    """The checkout and, without one, why not."""
    from harness.targets import TargetSpec, default_antenna_checkout

    text = config.getoption("--chaos-target") or os.environ.get("CHAOS_TARGET", "")
    if text.startswith("antenna"):
        try:
            return TargetSpec.parse(text).checkout, ""
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
    if text and text != "sandbox":
        raise pytest.UsageError(f"--chaos-target {text!r}: use antenna:PATH")
    found = default_antenna_checkout()
    return found, "" if found else "no Antenna checkout: give --chaos-target antenna:PATH (or CHAOS_TARGET)"


@pytest.fixture(scope="session")
def antenna_checkout(pytestconfig) -> Path:
    """The Antenna checkout under test (read-only: fixes-on runs use a patched copy)."""
    checkout, why = _checkout(pytestconfig)
    if checkout is None:
        pytest.skip(why)
    return checkout


@pytest.fixture(scope="session")
def antenna_factory(pytestconfig, antenna_checkout):
    """`antenna_factory(fixes="off", **settings)` → a running Antenna target. One runs at a time (each is six
    processes and a database): asking for other settings stops the previous one."""
    from harness.targets import TargetSpec

    spec = TargetSpec("antenna", antenna_checkout)
    current: dict[tuple, object] = {}

    def make(**overrides):
        settings = chaos_settings(pytestconfig, **overrides)
        key = tuple(sorted(settings.items()))
        if key not in current:
            for target in current.values():
                target.stop()
            current.clear()
            target = spec.build(settings)
            current[key] = target  # registered before start: a half-started target is stopped too
            target.start()
        return current[key]

    yield make
    for target in current.values():
        target.stop()
