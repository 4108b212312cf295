"""The shape fixes/ promises a host: small modules, no harness or pydantic inside, the core free of Django,
every fix switch read inside fixes/ only, and no two public types of the project with the same name."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import fixes

ROOT = Path(fixes.__file__).resolve().parent.parent
LIBRARY = sorted(p for p in (ROOT / "fixes").rglob("*.py") if "migrations" not in p.parts)
MAX_MODULE_LINES = 300


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_no_module_of_the_library_is_over_300_lines():
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in LIBRARY}
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_the_library_needs_neither_the_harness_nor_pydantic_and_its_core_no_django():
    for path in LIBRARY:
        used = imports(path)
        assert not used & {"harness", "scenarios", "pydantic"}, path
        if "django" not in path.relative_to(ROOT / "fixes").parts:
            assert not used & {"django", "celery", "redis"}, path


SWITCHES = [f.name for f in __import__("dataclasses").fields(fixes.config.FixesConfig) if f.type in ("bool", bool)]


def test_the_sandbox_reads_no_fix_switch():
    """Everything that decides lives in fixes/: the sandbox calls its entry points where Antenna would."""
    pattern = re.compile(r"config\(\)|FIXES\.(" + "|".join(SWITCHES) + r")\b|\b(" + "|".join(SWITCHES) + r")\s*=")
    offending = []
    for path in (ROOT / "harness" / "sandbox").rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offending.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offending == []


def test_no_two_public_types_share_a_name():
    """(Django's management commands are all called Command by convention.)"""
    where = defaultdict(list)
    for package in ("fixes", "harness", "scenarios"):
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.parse(path.read_text()).body:
                if isinstance(node, ast.ClassDef) and not node.name.startswith("_") and node.name != "Command":
                    where[node.name].append(path.relative_to(ROOT).as_posix())
    assert {name: paths for name, paths in where.items() if len(paths) > 1} == {}
