"""nox sessions: `nox` runs the default (tests); `nox -s lint`, `nox -s scenarios` on demand."""

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


@nox.session
def lint(session):
    session.install("ruff>=0.17")
    session.run("ruff", "check", ".")


@nox.session
def load(session):
    """A Locust swarm of Antenna-like workers against a fresh stack; fails when an invariant breaks.

    Arguments after `--` go to `python -m harness.load.run` (e.g. `-- --jobs 8 --users 16`)."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "harness.load.run", *session.posargs)


@nox.session
def bench(session):
    """The benchmarks of docs/benchmarks.md; arguments after `--` go to `python -m harness.bench`."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "harness.bench", *session.posargs)
