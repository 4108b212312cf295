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
from tests.expectations import matrix, run_and_check

pytestmark = pytest.mark.scenario

SCENARIOS = {name: s for name, s in all_scenarios().items() if "sandbox" in s.targets}
MATRIX = matrix(SCENARIOS, lambda scenario, fixes: [
    pytest.mark.xfail(strict=True, raises=AssertionError, reason=f"known gap: {scenario.known_gap}")]
    if fixes == "on" and scenario.known_gap else [])


@pytest.mark.parametrize(("name", "fixes"), MATRIX)
def test_scenario(stack_factory, tmp_path, name, fixes):
    scenario = SCENARIOS[name]
    run_and_check(scenario, stack_factory(**scenario.stack_settings(fixes)), fixes, tmp_path)
