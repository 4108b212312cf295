"""The incident scenarios: one module per incident, `sNN_<what_breaks>.py`, each holding a Scenario."""

from __future__ import annotations

import importlib
import pkgutil

from scenarios.base import Ctx, Scenario, scenario


def all_scenarios() -> dict[str, Scenario]:
    """Every sNN_* scenario by name, in order."""
    return collect(__name__, __path__, "s")


def collect(package: str, path, prefix: str) -> dict[str, Scenario]:
    """The Scenarios of a package's `<prefix>NN_*` modules by name, in module order."""
    found = {}
    for module in sorted(m.name for m in pkgutil.iter_modules(path) if m.name[:1] == prefix and m.name[1:3].isdigit()):
        loaded = importlib.import_module(f"{package}.{module}")
        for value in vars(loaded).values():
            if isinstance(value, Scenario):
                found[value.name] = value
    return found


def get(name: str) -> Scenario:
    """A scenario by name, by its sNN prefix, or a generated soak schedule `soak-<seed>`."""
    if name.startswith("soak-"):
        from scenarios.soak import schedule

        return schedule(int(name.removeprefix("soak-")))
    from scenarios.cluster import cluster_scenarios

    scenarios = {**all_scenarios(), **cluster_scenarios()}
    matches = [s for n, s in scenarios.items() if n == name or n.split("_", 1)[0] == name]
    if len(matches) != 1:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(scenarios)}")
    return matches[0]


__all__ = ["Ctx", "Scenario", "all_scenarios", "get", "scenario"]
