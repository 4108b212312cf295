"""The scenario matrix on a real Antenna checkout (--chaos-target antenna:PATH; CI passes the snapshot).

Fixes off is Antenna HEAD exactly as it is: where HEAD has the incident it must show, as on the sandbox;
where it does not (`on_head` says why, docs/antenna.md has the timeline) it must not show — a HEAD that
changes either way fails here. Fixes on is Antenna with the fixes' PR (fixes/antenna/antenna.patch) applied
to a copy of the checkout: every invariant must hold. One Antenna target runs at a time; runs with the same
settings share it.
"""

import pytest

from scenarios import all_scenarios
from tests.expectations import matrix, run_and_check

pytestmark = [pytest.mark.scenario, pytest.mark.antenna]

SCENARIOS = {name: s for name, s in all_scenarios().items() if "antenna" in s.targets}
MATRIX = matrix(SCENARIOS, lambda scenario, fixes: [
    pytest.mark.skip(reason=f"not judged on Antenna HEAD: {scenario.head_unjudged}")]
    if fixes == "off" and scenario.head_unjudged else [])


@pytest.mark.parametrize(("name", "fixes"), MATRIX)
def test_scenario_on_antenna(antenna_factory, tmp_path, name, fixes):
    scenario = SCENARIOS[name]
    run_and_check(scenario, antenna_factory(**scenario.stack_settings(fixes)), fixes, tmp_path, prefix="antenna-",
                  incident_expected=not scenario.on_head)
