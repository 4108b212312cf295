"""Scenarios of a 3-node NATS cluster (`--nats cluster3`): `cNN_<what_breaks>.py`, each holding a Scenario.

They need the cluster's node faults, so they are not part of the single-node matrix (tests/test_scenarios.py):
tests/test_cluster.py runs them, with s01–s05, under `--chaos-nats cluster3`.
"""

from __future__ import annotations

from harness.checks.ops import select
from scenarios.base import Scenario
from scenarios.evidence import Evidence


def cluster_scenarios() -> dict[str, Scenario]:
    """Every cNN_* scenario by name, in order."""
    from scenarios import collect

    return collect(__name__, __path__, "c")


def node_hit_and_jobs_succeeded(verb: str) -> Evidence:
    """A control's precondition: `verb` hit a node of the cluster, and every job still ended SUCCESS (a job
    failed while its stream only changed leaders is the false FAILURE this guards against)."""
    def shows(history, snapshot):
        hit = any((op.value or {}).get("fault") == verb and (op.value or {}).get("node")
                  for op in select(history, f="inject", type="ok"))
        jobs = list(snapshot.get("jobs", {}).values())
        return hit and bool(jobs) and all(job["status"] == "SUCCESS" for job in jobs)

    return Evidence(f"{verb} hit a node, and every job still ended SUCCESS", shows)
