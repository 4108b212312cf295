"""Guard-off runs: each fix switch does something. A scenario that names a switch as a guard runs with every
fix on but that one; its incident must show again (the checks it fails with the fixes off fail, and its
evidence is there). A switch that no longer matters, or a scenario that no longer depends on it, fails here."""

import pytest

from fixes.config import FixesConfig
from scenarios import all_scenarios
from scenarios.runner import run

pytestmark = pytest.mark.scenario

SCENARIOS = all_scenarios()
GUARDS = [pytest.param(name, switch, id=f"{name}-without-{switch}")
          for name, scenario in SCENARIOS.items() for switch in sorted(scenario.guards)]


@pytest.mark.parametrize(("name", "switch"), GUARDS)
def test_the_incident_shows_with_one_fix_off(stack_factory, tmp_path, name, switch):
    scenario = SCENARIOS[name]
    report = run(scenario, stack_factory(**scenario.stack_settings("on", without=switch)), "on", seed=0)
    assert report.error is None, f"the scenario raised:\n{report.error}"
    held = sorted(name for name in scenario.expect_off if (v := report.verdict(name)) is None or v.ok is not False)
    assert not held, f"with only {switch} off, {held} held: the switch does nothing here\n{report.evidence()}"
    assert scenario.evidence.shows(list(report.history.ops), report.snapshot), (
        f"with only {switch} off the checks failed, but not as the incident does ({scenario.evidence.what})\n"
        f"{report.evidence()}")


def test_every_switch_that_guards_against_an_incident_is_exercised():
    """The switches no scenario guards are the ones whose effect is not shown by an incident yet."""
    guarded = {switch for scenario in SCENARIOS.values() for switch in scenario.guards}
    assert guarded <= set(FixesConfig.switches())
    assert set(FixesConfig.switches()) - guarded == {"advisories"}
