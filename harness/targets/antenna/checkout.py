"""An Antenna checkout as the harness runs it: as it is, or a copy with the fixes applied the way Antenna's PR would.

`prepare(checkout, fixes=True)` copies the checkout into the cache and applies fixes/antenna/antenna.patch to the
copy; the user's checkout is never written to. The copy is keyed by the patch, the files it touches, the fixes/
package's source and the state of every other file copied, so an edit to any of them builds a new copy and an
unchanged checkout reuses the one built before. `fixes_source()` is the directory to put on Antenna's PYTHONPATH
so that `import fixes` works in its processes.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

from filelock import FileLock

import fixes as fixes_package
from harness.targets.antenna.venv import cache_root

PATCH = Path(__file__).resolve().parents[3] / "fixes" / "antenna" / "antenna.patch"
BASE = "731cc2a2"  # the Antenna commit the patch was made against
SKIP_ANYWHERE = {".git", "node_modules", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
SKIP_AT_TOP = {"ui", "venv", ".venv"}  # the frontend and local virtualenvs: the backend needs neither
_FILE = re.compile(r"^(?:---|\+\+\+) [ab]/(.+?)\s*$", re.MULTILINE)
_HUNK = re.compile(r"^@@ .*$", re.MULTILINE)


class PatchDoesNotApply(RuntimeError):
    """The checkout differs from what the patch was made against where the patch changes it."""


def fixes_source() -> Path:
    """The directory that holds the `fixes` package (this project's root)."""
    return Path(fixes_package.__file__).resolve().parent.parent


def prepare(checkout: str | Path, fixes: bool) -> Path:
    """The checkout itself (fixes False), or a cached copy of it with antenna.patch applied."""
    checkout = Path(checkout).expanduser().resolve()
    if not fixes:
        return checkout
    if not (checkout / "manage.py").is_file() or not (checkout / "ami").is_dir():
        raise FileNotFoundError(f"{checkout} is not an Antenna backend checkout: no manage.py and ami/")
    patch = PATCH.read_bytes()
    target = cache_root() / f"antenna-fixes-{copy_key(checkout, patch)}"
    if (target / ".ready").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / ".ready").exists():  # another process built it while we waited
            return target
        building = target.with_name(f"{target.name}.building-{os.getpid()}")
        shutil.rmtree(building, ignore_errors=True)
        try:
            _copy(checkout, building)
            _apply(patch, building, checkout)
            (building / ".ready").write_text(f"{checkout}\n")
            shutil.rmtree(target, ignore_errors=True)
            building.rename(target)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return target


def copy_key(checkout: Path, patch: bytes) -> str:
    digest = hashlib.sha256(patch)
    for name in touched(patch):
        path = checkout / name
        digest.update(f"\0touched {name}\0".encode())
        digest.update(path.read_bytes() if path.is_file() else b"\0absent")
    root = fixes_source()
    for path in sorted((root / "fixes").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(f"\0fixes {path.relative_to(root)}\0".encode())
            digest.update(path.read_bytes())
    for relative, stat in _tree(checkout):  # an edit to any other file copied builds a new copy too
        digest.update(f"\0{relative} {stat.st_size} {stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def touched(patch: bytes) -> list[str]:
    """The checkout paths the patch changes or creates."""
    return sorted(set(_FILE.findall(patch.decode())))


def _tree(root: Path):
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if d not in SKIP_ANYWHERE and not (here == root and d in SKIP_AT_TOP))
        for name in sorted(files):
            path = here / name
            if not path.is_symlink():
                yield str(path.relative_to(root)), path.stat()


def _copy(checkout: Path, dest: Path) -> None:
    """Copy what the backend needs, writable (a read-only checkout stays read-only; its copy must take the patch)."""
    for relative, _ in _tree(checkout):
        path = dest / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(checkout / relative, path)
        os.chmod(path, (checkout / relative).stat().st_mode | 0o200)


def _apply(patch: bytes, dest: Path, checkout: Path) -> None:
    # --fuzz=0: every context line must match (with fuzz a drifted checkout could take a hunk in the wrong place)
    command = ["patch", "-p1", "--forward", "--batch", "--fuzz=0", "--no-backup-if-mismatch", "--reject-file=-",
               "-d", str(dest)]
    checked = subprocess.run([*command, "--dry-run"], input=patch, capture_output=True)
    if checked.returncode != 0:
        raise PatchDoesNotApply(_explain(patch, checked.stdout.decode() + checked.stderr.decode(), checkout))
    subprocess.run(command, input=patch, capture_output=True, check=True)


def _explain(patch: bytes, output: str, checkout: Path) -> str:
    """Name the hunks that failed, with their headers from the patch."""
    hunks, current = {}, None
    for block in re.split(r"^(?=diff --git )", patch.decode(), flags=re.MULTILINE):
        names = _FILE.findall(block)
        if names:
            hunks[names[-1]] = _HUNK.findall(block)
    failed = []
    for line in output.splitlines():
        if found := re.match(r"(?:checking|patching) file (.+)$", line.strip()):
            current = found.group(1)
        elif found := re.match(r"Hunk #(\d+) FAILED at (\d+)", line.strip()):
            number = int(found.group(1))
            headers = hunks.get(current, [])
            header = headers[number - 1] if number <= len(headers) else "?"
            failed.append(f"  {current}: hunk #{number} `{header}` (expected at line {found.group(2)})")
        elif "previously applied" in line or "can't find file" in line:
            failed.append(f"  {current}: {line.strip()}")
    detail = "\n".join(failed) if failed else output.strip()
    return (f"{PATCH.name} does not apply to {checkout} (it was made against Antenna {BASE}; a newer checkout "
            f"may have drifted where the patch changes it):\n{detail}")
