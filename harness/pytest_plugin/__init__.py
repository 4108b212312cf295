"""pytest plugin (entry point `nats_job_chaos`): real NATS/Redis/PostgreSQL/sandbox as fixtures.

Fixtures are the public API: nats_server, redis_server, postgres, stack, stack_factory, sandbox,
sandbox_db, worker. `@pytest.mark.stack(fixes="off", ack_wait=1)` picks the stack a test's
`sandbox` runs on. Defaults come from the --chaos-* command-line options; --chaos-backend docker
(or CHAOS_BACKEND=docker) runs NATS, Redis and PostgreSQL as containers, and skips the tests that need
them when no Docker engine is reachable.
"""

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


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_sessionstart(session):
    """Clear what a crashed earlier run left behind (tagged processes whose owner is dead)."""
    from harness.infra.base import reap_orphans

    reap_orphans()


def pytest_configure(config):
    from harness.pytest_plugin.fixtures import chaos_backend

    try:
        chaos_backend(config)
    except ValueError as exc:  # a CHAOS_BACKEND the option's choices would have refused
        raise pytest.UsageError(str(exc)) from None
    # a CI runner's SIGTERM must run the fixtures' finalizers (and atexit) like Ctrl-C does
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    config.addinivalue_line(
        "markers", "stack(**settings): run this test's `sandbox` on a stack with these settings "
        "(fixes='on'|'off', ack_wait=S, max_deliver=N, sweep_interval=S, retention='limits'|'workqueue', "
        "or any CHAOS_* name)")
