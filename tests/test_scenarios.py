"""The scenario matrix: every scenario with the fixes off (its incident must show: the checks it names fail,
and its evidence is there) and on (every invariant must hold). Control scenarios pass in both modes, and
their precondition must hold in both. A scenario with a known gap (the fixes do not cure it yet) is an
expected failure with the fixes on, strictly: once it passes, the mark must go. Only a failed assertion is
that expected failure: a scenario that raised fails its test in both modes.

Stacks are shared per settings (stack_factory), with the plugin's compressed timeouts: ack_wait 1 s,
max_deliver 3, a sweep every second. Set CHAOS_REPORT_DIR to keep a report directory per run;
without it a report is written (to pytest's temp dir) only when a run is not as expected.
"""

import pytest

from scenarios import all_scenarios
from scenarios.runner import run
from tests.expectations import check, report_dir

pytestmark = pytest.mark.scenario

SCENARIOS = {name: s for name, s in all_scenarios().items() if "sandbox" in s.targets}
MATRIX = [pytest.param(name, fixes, id=f"{name}-fixes-{fixes}",
                       marks=[pytest.mark.xfail(strict=True, raises=AssertionError,
                                               reason=f"known gap: {SCENARIOS[name].known_gap}")]
                       if fixes == "on" and SCENARIOS[name].known_gap else [])
          for fixes in ("off", "on") for name in SCENARIOS]


@pytest.mark.parametrize(("name", "fixes"), MATRIX)
def test_scenario(stack_factory, tmp_path, name, fixes):
    scenario = SCENARIOS[name]
    stack = stack_factory(**scenario.stack_settings(fixes))
    report = run(scenario, stack, fixes, seed=0, report_dir=report_dir(f"{name}-{fixes}"))
    check(scenario, report, fixes, tmp_path)
