"""The state file `chaos up` writes so other `chaos` commands find the running stack."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer


def path() -> Path:
    return Path(os.environ.get("CHAOS_STATE_FILE", ".chaos/stack.json"))


def describe(stack, settings: dict) -> dict:
    """What the state file holds: where the stack's services answer, its worker token, its settings.

    database_url names the server's default database; sandbox_database_url the one Django uses.
    """
    return {
        "kind": stack.kind, "api_url": stack.api_url, "token": stack.token,
        "backend": getattr(stack, "backend", "process"), "create_path": stack.create_path,
        "nats_url": stack.nats.url, "redis_url": stack.redis.url, "database_url": stack.postgres.url,
        "sandbox_database_url": stack.settings["CHAOS_DATABASE_URL"], "settings": settings,
    }


def write(data: dict) -> None:
    p = path()
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(data, indent=2))


def remove() -> None:
    import shutil

    path().unlink(missing_ok=True)
    shutil.rmtree(path().parent / "requests", ignore_errors=True)


def read() -> dict:
    p = path()
    if not p.exists():
        raise typer.BadParameter(f"no running stack found ({p} is missing): start one with `chaos up`")
    return json.loads(p.read_text())
