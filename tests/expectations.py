"""What a scenario run must show, shared by the sandbox matrix and the Antenna matrix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def report_dir(name: str) -> Path | None:
    keep = os.environ.get("CHAOS_REPORT_DIR")
    return Path(keep) / name if keep else None


def matrix(scenarios: dict, marks) -> list:
    """Every scenario in both modes, as pytest params `(name, fixes)`; marks(scenario, fixes) -> its marks."""
    return [pytest.param(name, fixes, id=f"{name}-fixes-{fixes}", marks=marks(scenario, fixes))
            for fixes in ("off", "on") for name, scenario in scenarios.items()]


def run_and_check(scenario, target, fixes: str, tmp_path: Path, prefix: str = "",
                  incident_expected: bool = True) -> None:
    from scenarios.runner import run

    report = run(scenario, target, fixes, seed=0, report_dir=report_dir(f"{prefix}{scenario.name}-{fixes}"))
    check(scenario, report, fixes, tmp_path, incident_expected)


def check(scenario, report, fixes: str, tmp_path: Path, incident_expected: bool = True) -> None:
    """Fixes off: the incident shows (its checks fail, its evidence is there) — or, where the target does not
    have the incident (`incident_expected` False), it must not show. Fixes on, and controls: every check holds."""
    print(report.evidence())
    if not report.as_expected and report.report_dir is None:
        from scenarios.report import write

        report.report_dir = write(report, tmp_path / f"{scenario.name}-{fixes}")
    where = f"\nreport: {report.report_dir}" if report.report_dir else ""
    if report.error is not None:  # pytest.fail is no AssertionError: never the expected failure of a known gap
        pytest.fail(f"the scenario raised:\n{report.error}\n{report.evidence()}{where}", pytrace=False)
    shown = scenario.evidence.shows(list(report.history.ops), report.snapshot)
    if fixes == "off" and not scenario.control:
        failed = {v.name for v in report.verdicts if v.ok is False}
        if not incident_expected:
            assert not shown, f"the incident showed where it was measured not to: {scenario.on_head}\n" \
                              f"{report.evidence()}{where}"
            return
        missing = sorted(scenario.expect_off - failed)
        assert not missing, f"the incident did not show: {missing} held with the fixes off\n{report.evidence()}{where}"
        assert shown, f"the checks failed, but not as the incident does: {scenario.evidence.what}\n{report.evidence()}{where}"
    else:
        if scenario.control:
            assert shown, f"the control's precondition did not hold: {scenario.evidence.what}\n{report.evidence()}{where}"
        if fixes == "off" and scenario.off_varies:
            print(f"fixes-off verdicts reported, not asserted: {scenario.off_varies}")
            return
        assert report.composed.ok is True, f"{report.evidence()}{where}"
