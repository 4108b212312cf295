"""The scenario matrix: every scenario with the fixes off (its incident must show: the checks it names fail,
and its evidence is there) and on (every invariant must hold). Control scenarios pass in both modes, and
their precondition must hold in both. A scenario with a known gap (the fixes do not cure it yet) is an
expected failure with the fixes on, strictly: once it passes, the mark must go. Only a failed assertion is
that expected failure: a scenario that raised fails its test in both modes.

Stacks are shared per settings (stack_factory), with the plugin's compressed timeouts: ack_wait 1 s,
max_deliver 3, a sweep every second. Set CHAOS_REPORT_DIR to keep a report directory per run;
without it a report is written (to pytest's temp dir) only when a run is not as expected.
"""

import os
from pathlib import Path

import pytest

from scenarios import all_scenarios
from scenarios.runner import run

pytestmark = pytest.mark.scenario

SCENARIOS = all_scenarios()
MATRIX = [pytest.param(name, fixes, id=f"{name}-fixes-{fixes}",
                       marks=[pytest.mark.xfail(strict=True, raises=AssertionError,
                                               reason=f"known gap: {SCENARIOS[name].known_gap}")]
                       if fixes == "on" and SCENARIOS[name].known_gap else [])
          for fixes in ("off", "on") for name in SCENARIOS]


@pytest.mark.parametrize(("name", "fixes"), MATRIX)
def test_scenario(stack_factory, tmp_path, name, fixes):
    scenario = SCENARIOS[name]
    stack = stack_factory(**scenario.stack_settings(fixes))
    keep = os.environ.get("CHAOS_REPORT_DIR")
    report = run(scenario, stack, fixes, seed=0,
                 report_dir=Path(keep) / f"{name}-{fixes}" if keep else None)
    print(report.evidence())
    if not report.as_expected and report.report_dir is None:
        from scenarios.report import write

        report.report_dir = write(report, tmp_path / f"{name}-{fixes}")
    where = f"\nreport: {report.report_dir}" if report.report_dir else ""
    if report.error is not None:  # pytest.fail is no AssertionError: never the expected failure of a known gap
        pytest.fail(f"the scenario raised:\n{report.error}\n{report.evidence()}{where}", pytrace=False)
    shown = scenario.evidence.shows(list(report.history.ops), report.snapshot)
    if fixes == "off" and not scenario.control:
        failed = {v.name for v in report.verdicts if v.ok is False}
        missing = sorted(scenario.expect_off - failed)
        assert not missing, f"the incident did not show: {missing} held with the fixes off\n{report.evidence()}{where}"
        assert shown, f"the checks failed, but not as the incident does: {scenario.evidence.what}\n{report.evidence()}{where}"
    else:
        if scenario.control:
            assert shown, f"the control's precondition did not hold: {scenario.evidence.what}\n{report.evidence()}{where}"
        assert report.composed.ok is True, f"{report.evidence()}{where}"
