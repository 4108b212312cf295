"""Faults come in pairs: inject + heal. A FaultTarget is what they act on: a Stack in this process, or a
stack that `chaos up` runs in another one."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import ClassVar, Protocol
from urllib.parse import urlparse, urlunparse

from harness.history import History


class FaultTarget(Protocol):
    history: History  # every fault appends what it did here
    api_url: str
    token: str
    create_path: str  # where POST {"images": n} creates a job
    nats_url: str
    redis_url: str
    settings: dict[str, str]

    def service(self, name: str, action: str, **args) -> dict | None:
        """start | stop | kill | restart(wipe=) | pause | resume on nats, redis, web, celery_worker, celery_beat;
        on a NATS cluster also kill_node, start_nodes, wipe_node, partition, heal_partition (what they did)."""

    def revoke(self, job: int) -> None:
        """REVOKE a job the way the host's watchdog does."""


class Fault:
    """One fault family. A fresh instance per injection keeps whatever its heal needs."""

    verb: ClassVar[str] = ""
    help: ClassVar[str] = ""
    positional: ClassVar[str | None] = None  # the CLI's positional argument: "job" or "seconds"
    positional_optional: ClassVar[bool] = False  # the verb also works without it
    timed: ClassVar[bool] = False  # takes `seconds` and heals itself after that long
    one_shot: ClassVar[bool] = False  # over once injected; heal only makes sure things run again

    @classmethod
    def positional_args(cls, value) -> dict:
        """The inject() keyword for the positional argument as given on a command line: {} without one."""
        if cls.positional is None or value is None:
            return {}
        return {cls.positional: float(value) if cls.positional == "seconds" else int(value)}

    def inject(self, target: FaultTarget, **args) -> dict | None:
        raise NotImplementedError

    def heal(self, target: FaultTarget) -> dict | None:
        """Undo what inject broke; a one-shot fault has nothing to undo."""
        return None


class LocalTarget:
    """A Stack owned by this process."""

    def __init__(self, stack, history: History):
        self.stack, self.history = stack, history
        self.api_url, self.token, self.create_path = stack.api_url, stack.token, stack.create_path
        self.nats_url, self.redis_url, self.settings = stack.nats.url, stack.redis.url, dict(stack.settings)

    def service(self, name: str, action: str, **args) -> dict | None:
        service = self.stack.services()[name]
        if action == "restart":
            self.stack.restart_component(name, **args)
        elif action == "stop":
            service.stop(keep_data=True)
        elif action == "start":
            if service.paused:
                service.resume()
            service.start()
        else:
            result = getattr(service, action)(**args)
            return result if isinstance(result, dict) else None
        return None

    def revoke(self, job: int) -> None:
        self.stack.revoke(job)


class RemoteTarget:
    """The stack of a running `chaos up`: its servers are reached through the command channel."""

    def __init__(self, info: dict, history: History):
        self.info, self.history = info, history
        self.api_url, self.token = info["api_url"], info["token"]
        self.create_path = info.get("create_path", "/jobs/")
        self.nats_url, self.redis_url = info["nats_url"], info["redis_url"]
        self.settings = dict(info.get("settings", {}))

    @property
    def database_url(self) -> str:
        """The sandbox's database (the state file's database_url names the server's default one)."""
        if self.info.get("sandbox_database_url"):
            return self.info["sandbox_database_url"]
        from harness.infra.stack import DATABASE

        return urlunparse(urlparse(self.info["database_url"])._replace(path=f"/{DATABASE}"))

    def service(self, name: str, action: str, **args) -> dict | None:
        from harness import control

        answer = control.submit(f"{name}.{action}", **args)
        if not answer.get("ok"):
            raise RuntimeError(f"{name}.{action} failed in `chaos up`: {answer.get('error')}")
        return answer.get("result")

    def revoke(self, job: int) -> None:
        if self.info.get("kind", "sandbox") == "sandbox":
            self.manage("chaos_revoke", str(job))
            return
        import httpx

        response = httpx.post(f"{self.api_url.rstrip('/')}/chaos/jobs/{job}/revoke/",
                              headers={"Authorization": f"Token {self.token}"}, timeout=60)
        response.raise_for_status()

    def manage(self, *args: str) -> str:
        from harness.infra.django import sandbox_environment

        env = sandbox_environment({**os.environ, **self.settings, "CHAOS_DATABASE_URL": self.database_url,
                                   "CHAOS_NATS_URL": self.nats_url, "CHAOS_REDIS_URL": self.redis_url})
        done = subprocess.run([sys.executable, "-m", "django", *args], env=env, capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"django {' '.join(args)} failed:\n{done.stderr[-2000:]}")
        return done.stdout
