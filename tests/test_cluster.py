"""The scenario matrix on a 3-node NATS cluster (job streams and the advisory stream at replicas 3): s01–s05 and
the cluster's own scenarios (cNN: node kills, a partition, a wiped node, every node crashing with lazy fsync),
each with the fixes off and on, judged as in tests/test_scenarios.py.

Marked `cluster`: skipped unless the run's stacks are clusters (`pytest --chaos-nats cluster3`, or
`--chaos-nats cluster3-netns` as root, or `nox -s cluster`)."""

import pytest

from harness.infra.stack import CLUSTER_TOPOLOGIES
from scenarios import all_scenarios
from scenarios.cluster import cluster_scenarios
from tests.expectations import matrix, run_and_check

pytestmark = [pytest.mark.scenario, pytest.mark.cluster]

ON_SINGLE_NODE = ("s01", "s02", "s03", "s04", "s05")
SCENARIOS = {**{name: s for name, s in all_scenarios().items() if name[:3] in ON_SINGLE_NODE},
             **cluster_scenarios()}
MATRIX = matrix(SCENARIOS, lambda scenario, fixes: [
    pytest.mark.xfail(strict=True, raises=AssertionError, reason=f"known gap: {scenario.known_gap}")]
    if fixes == "on" and scenario.known_gap else [])


@pytest.mark.parametrize(("name", "fixes"), MATRIX)
def test_scenario_on_the_cluster(stack_factory, tmp_path, name, fixes):
    scenario = SCENARIOS[name]
    stack = stack_factory(**scenario.stack_settings(fixes))
    assert stack.topology in CLUSTER_TOPOLOGIES and stack.settings["CHAOS_STREAM_REPLICAS"] == "3"
    run_and_check(scenario, stack, fixes, tmp_path, prefix="cluster-")
