"""pytest plugin (entry point `nats_job_chaos`): real NATS/Redis/PostgreSQL/sandbox as fixtures.

Fixtures are the public API: nats_server, redis_server, postgres, stack, stack_factory, sandbox,
sandbox_db, worker; antenna_checkout and antenna_factory for a real Antenna checkout (--chaos-target). `@pytest.mark.stack(fixes="off", ack_wait=1)` picks the stack a test's
`sandbox` runs on. Defaults come from the --chaos-* command-line options; --chaos-backend docker
(or CHAOS_BACKEND=docker) runs NATS, Redis and PostgreSQL as containers, and skips the tests that need
them when no Docker engine is reachable.
"""

import os
import signal
import threading

import pytest

from harness.pytest_plugin.fixtures import (  # noqa: F401  (pytest discovers fixtures by name)
    nats_server,
    postgres,
    redis_server,
    sandbox,
    sandbox_db,
    stack,
    stack_factory,
    worker,
)
from harness.pytest_plugin.targets import antenna_checkout, antenna_factory  # noqa: F401


def pytest_addoption(parser):
    group = parser.getgroup("chaos", "NATS job chaos harness")
    group.addoption("--chaos-fixes", default="on", choices=("on", "off"), help="fixes of the default stack")
    group.addoption("--chaos-ack-wait", type=float, default=1.0, help="ack_wait seconds (compressed)")
    group.addoption("--chaos-max-deliver", type=int, default=3, help="max_deliver of job consumers")
    group.addoption("--chaos-sweep-interval", type=float, default=1.0, help="seconds between reaper sweeps")
    group.addoption("--chaos-web-workers", type=int, default=3, help="web server worker processes")
    group.addoption("--chaos-backend", default=None, choices=("process", "docker"),
                    help="where NATS, Redis and PostgreSQL run: process (local servers from wheels) or docker "
                         "(containers; tests skip without a Docker engine). Default: CHAOS_BACKEND, else process")
    group.addoption("--chaos-slowdown", type=float, default=None,
                    help="scale timing-derived bounds and heartbeat periods (a slow or loaded machine; "
                         "default: CHAOS_SLOWDOWN, else 1)")
    group.addoption("--chaos-target", default=None,
                    help="antenna:PATH — an Antenna checkout (its backend) for the Antenna matrix (default: "
                         "CHAOS_TARGET, else the snapshot at ../shared/targets/antenna when present; without one "
                         "the Antenna tests skip, saying so)")
    group.addoption("--chaos-nats", default=None, choices=("single", "cluster3", "cluster3-netns"),
                    help="NATS of every stack: single (one nats-server), cluster3 (three clustered nodes, streams at "
                         "replicas 3; runs the tests marked cluster) or cluster3-netns (the same, each node in a "
                         "network namespace; root only, else the cluster tests skip). Default: CHAOS_NATS, else single")
    group.addoption("--chaos-require-servers", action="store_true",
                    default=os.environ.get("CHAOS_REQUIRE_SERVERS", "") not in ("", "0"),
                    help="fail the run when no test against real servers passed (CI; or CHAOS_REQUIRE_SERVERS=1)")


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_sessionstart(session):
    """Clear what a crashed earlier run left behind (tagged processes whose owner is dead)."""
    from harness.infra.base import reap_orphans
    from harness.infra.netns import remove_leftovers

    reap_orphans()
    remove_leftovers()  # namespaces, veths and bridges of dead runs (root only; a no-op otherwise)


def pytest_configure(config):
    from harness.pytest_plugin.fixtures import chaos_backend

    try:
        chaos_backend(config)
    except ValueError as exc:  # a CHAOS_BACKEND the option's choices would have refused
        raise pytest.UsageError(str(exc)) from None
    if config.getoption("--chaos-nats") is not None:  # read by every Stack and by the soak's schedules
        os.environ["CHAOS_NATS"] = config.getoption("--chaos-nats")
    if config.getoption("--chaos-slowdown") is not None:  # read by the runner, the scenarios and the tests
        os.environ["CHAOS_SLOWDOWN"] = str(config.getoption("--chaos-slowdown"))
    # a CI runner's SIGTERM must run the fixtures' finalizers (and atexit) like Ctrl-C does
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    config.addinivalue_line(
        "markers", "stack(**settings): run this test's `sandbox` on a stack with these settings "
        "(fixes='on'|'off', ack_wait=S, max_deliver=N, sweep_interval=S, retention='limits'|'workqueue', "
        "or any CHAOS_* name)")
    config.addinivalue_line("markers", "antenna: runs against a real Antenna checkout (--chaos-target antenna:PATH)")
    config.addinivalue_line("markers", "cluster: needs stacks on a 3-node NATS cluster (--chaos-nats cluster3 or "
                                       "cluster3-netns); "
                                       "skipped otherwise")


def pytest_collection_modifyitems(config, items):
    from harness.infra import netns
    from harness.infra.stack import is_cluster, nats_topology

    reason = "a 3-node NATS cluster test: run with --chaos-nats cluster3 (or nox -s cluster)"
    if nats_topology() == "cluster3-netns":
        ok, why = netns.available()
        if ok:
            return
        reason = f"--chaos-nats cluster3-netns: {why}"
    elif is_cluster():
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if item.get_closest_marker("cluster"):
            item.add_marker(skip)


SERVER_MARKERS = ("integration", "scenario")
_server_tests_passed: list[str] = []


def pytest_runtest_logreport(report):
    if report.when == "call" and report.passed and any(m in report.keywords for m in SERVER_MARKERS):
        _server_tests_passed.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    """--chaos-require-servers (CI): a run in which no test against real servers passed is a failure, not a
    green run that tested nothing real (e.g. every server test skipped for want of a Docker engine)."""
    if not session.config.getoption("--chaos-require-servers") or exitstatus not in (0, 5):
        return
    selected = [item for item in session.items if any(item.get_closest_marker(m) for m in SERVER_MARKERS)]
    if selected and not _server_tests_passed:
        session.config.pluginmanager.get_plugin("terminalreporter").write_line(
            f"--chaos-require-servers: none of the {len(selected)} tests against real servers passed", red=True)
        session.exitstatus = 1
