"""The scenario matrix on a real Antenna checkout (--chaos-target antenna:PATH; CI passes the snapshot).

Fixes off is Antenna HEAD exactly as it is: where HEAD has the incident it must show, as on the sandbox;
where it does not (`on_head` says why, docs/antenna.md has the timeline) it must not show — a HEAD that
changes either way fails here. Fixes on is Antenna with the fixes' PR (fixes/antenna/antenna.patch) applied
to a copy of the checkout: every invariant must hold. One Antenna target runs at a time; runs with the same
settings share it.
"""

import pytest

from scenarios import all_scenarios
from scenarios.runner import run
from tests.expectations import check, report_dir

pytestmark = [pytest.mark.scenario, pytest.mark.antenna]

SCENARIOS = {name: s for name, s in all_scenarios().items() if "antenna" in s.targets}
MATRIX = [pytest.param(name, fixes, id=f"{name}-fixes-{fixes}",
                       marks=[pytest.mark.skip(reason=f"not judged on Antenna HEAD: {SCENARIOS[name].head_unjudged}")]
                       if fixes == "off" and SCENARIOS[name].head_unjudged else [])
          for fixes in ("off", "on") for name in SCENARIOS]


@pytest.mark.parametrize(("name", "fixes"), MATRIX)
def test_scenario_on_antenna(antenna_factory, tmp_path, name, fixes):
    scenario = SCENARIOS[name]
    target = antenna_factory(**scenario.stack_settings(fixes))
    report = run(scenario, target, fixes, seed=0, report_dir=report_dir(f"antenna-{name}-{fixes}"))
    check(scenario, report, fixes, tmp_path, incident_expected=not scenario.on_head)
