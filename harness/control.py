"""A command channel into a running `chaos up`: other `chaos` commands ask it to act on its stack.

Process faults (kill, restart with a wiped store, pause) need the process that owns the servers, so
`chaos fault` writes a request file next to the state file and `chaos up` carries it out.
"""

from __future__ import annotations

import json
import threading
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path

from harness import state
from harness.waiting import poll_until

SERVICE_VERBS = ("start", "stop", "kill", "restart", "pause", "resume", "wipe", "mark_disk", "lose_writes",
                 "kill_node", "start_nodes", "wipe_node", "partition", "heal_partition")  # the last five: a cluster


def _inbox() -> Path:
    return state.path().parent / "requests"


def submit(verb: str, timeout: float = 60.0, **args) -> dict:
    """Ask the running `chaos up` to do `verb`; returns its answer ({"ok": bool, ...})."""
    state.read()  # fails with a clear message when no stack runs
    inbox = _inbox()
    inbox.mkdir(parents=True, exist_ok=True)
    request_id = uuid.uuid4().hex[:8]
    answer = inbox / f"{request_id}.answer.json"
    (inbox / f"{request_id}.tmp").write_text(json.dumps({"verb": verb, "args": args}))
    (inbox / f"{request_id}.tmp").rename(inbox / f"{request_id}.request.json")
    poll_until(answer.exists, timeout=timeout, interval=0.1, what=f"`chaos up` answering {verb}")
    result = json.loads(answer.read_text())
    answer.unlink(missing_ok=True)
    return result


def service_verb(stack, verb: str, args: dict) -> dict:
    """`nats.restart` {"wipe": true}, `redis.kill`, `celery_beat.stop`, … on the stack's services."""
    service_name, _, action = verb.partition(".")
    services = stack.services()
    if service_name not in services or action not in SERVICE_VERBS:
        raise ValueError(f"unknown verb {verb!r}: use <{'|'.join(services)}>.<{'|'.join(SERVICE_VERBS)}>")
    service = services[service_name]
    result = None
    if action == "stop":
        service.stop(keep_data=True)
    elif not hasattr(service, action):
        raise ValueError(f"{service_name} cannot {action} (a NATS cluster's verb: start the stack with --nats cluster3)")
    else:
        result = getattr(service, action)(**args)
    return {"service": service_name, "running": service.is_running,
            "result": result if isinstance(result, dict) else None}


def serve(stack, stop: threading.Event, handler: Callable[[object, str, dict], dict] = service_verb) -> None:
    """Carry out requests until `stop` is set (runs in `chaos up`'s main loop)."""
    inbox = _inbox()
    inbox.mkdir(parents=True, exist_ok=True)
    while not stop.wait(0.1):
        for request in sorted(inbox.glob("*.request.json")):
            body = json.loads(request.read_text())
            request.unlink()
            try:
                answer = {"ok": True, **(handler(stack, body["verb"], body.get("args", {})) or {})}
            except Exception as exc:  # report it to the caller; `chaos up` keeps serving
                answer = {"ok": False, "error": f"{exc!r}", "traceback": traceback.format_exc(limit=3)}
            out = request.with_name(request.name.replace(".request.json", ".answer.json"))
            out.write_text(json.dumps(answer, default=str))
