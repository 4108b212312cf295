"""A migrated cluster kept between runs, so a Stack can skip `migrate` + `chaos_token`.

Those need a Django process (~1.3 s of CPU on two cores, while gunicorn and Celery import Django
too). The snapshot is keyed by everything that can change the schema: the installed distributions,
the project's migrations, settings module and token command, and the CHAOS_* settings.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sysconfig
import threading
from collections.abc import Mapping
from pathlib import Path

import psutil

from harness.infra.base import PROJECT_ROOT, TMP_ROOT

KEEP = 6  # snapshots of other keys beyond this many (least recently used first) are deleted
PREFIX = "chaos-migrated-"


def schema_key(settings: Mapping[str, str], database: str) -> str:
    digest = hashlib.sha256(database.encode())
    site_packages = Path(sysconfig.get_paths()["purelib"])
    digest.update("\n".join(sorted(n for n in os.listdir(site_packages) if n.endswith(".dist-info"))).encode())
    sources = [PROJECT_ROOT / "harness/sandbox/settings.py"]
    for package in ("harness", "fixes"):
        sources += [*(PROJECT_ROOT / package).glob("**/migrations/*.py"),
                    *(PROJECT_ROOT / package).glob("**/commands/chaos_token.py")]
    for path in sorted(sources):
        digest.update(str(path.relative_to(PROJECT_ROOT)).encode() + path.read_bytes())
    knobs = {name: value for name, value in settings.items() if not name.endswith("_URL")}
    digest.update(json.dumps(knobs, sort_keys=True).encode())
    return digest.hexdigest()[:16]


class MigratedSnapshot:
    def __init__(self, key: str):
        self.dir = TMP_ROOT / f"{PREFIX}{key}"

    @property
    def pgdata(self) -> Path:
        return self.dir / "pgdata"

    def token(self) -> str | None:
        """The worker token stored with the snapshot, or None when there is no usable snapshot."""
        try:
            token = (self.dir / "token").read_text().strip()
        except OSError:
            return None
        os.utime(self.dir)  # recently used: pruned last
        return token if (self.pgdata / "PG_VERSION").exists() else None

    def save(self, pgdata: Path, token: str) -> None:
        """Copy a cleanly stopped cluster; concurrent savers (processes, or stacks starting in threads of one
        process) each stage their own copy and race harmlessly on the final rename."""
        staging = self.dir.with_name(f"{self.dir.name}.{threading.get_ident()}-{os.getpid()}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        subprocess.run(["cp", "-a", str(pgdata), str(staging / "pgdata")], check=True)
        (staging / "token").write_text(token)
        try:
            staging.rename(self.dir)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
        self._prune()

    def _prune(self) -> None:
        others = []
        for path in TMP_ROOT.glob(f"{PREFIX}*"):
            if path.suffix == ".tmp":  # a saver's staging dir: stale once that saver is gone
                if not psutil.pid_exists(int(re.search(r"(\d+)$", path.stem).group(1))):  # ...-<pid>.tmp
                    shutil.rmtree(path, ignore_errors=True)
            elif path != self.dir:
                others.append(path)
        others.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in others[KEEP - 1:]:
            shutil.rmtree(stale, ignore_errors=True)
