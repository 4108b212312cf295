"""`chaos demo`: reproduce both incidents on a real stack with the fixes off, then show them cured."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
from rich.console import Console
from rich.table import Table

from harness.client import FINAL, SandboxClient
from harness.infra import Stack

DEMO_SETTINGS = {"ACK_WAIT": "1", "MAX_DELIVER": "3", "SWEEP_INTERVAL": "1", "STUCK_GRACE": "1",
                 "FETCH_TIMEOUT": "0.25"}


@dataclass
class Outcome:
    dead_job: str  # seed 000: what became of a job whose tasks all died
    duplicates: str  # seed 003: stream messages after REVOKE → Start


def _reserve(api: httpx.Client, job_id: int, size: int = 50) -> list[dict]:
    response = api.post(f"/jobs/{job_id}/tasks/", json={"batch_size": size})
    return response.json().get("tasks", []) if response.status_code == 200 else []


def dead_tasks(client: SandboxClient, api: httpx.Client, images: int, window: float) -> str:
    """Seed 000: workers reserve every task and crash, again and again, until NATS gives up."""
    job_id = client.create_job(images=images, start=True)["id"]
    client.wait_for_status(job_id, "STARTED", timeout=30)
    deadline = time.monotonic() + window
    while time.monotonic() < deadline:
        _reserve(api, job_id)  # ...and never post a result
        job = client.job(job_id)
        if job["status"] in FINAL:
            break
    job = client.job(job_id)
    errors = [line["message"] for line in job["logs"] if line["level"] == "ERROR"]
    waited = f"after {window:.0f}s" if job["status"] == "STARTED" else ""
    return f"{job['status']} {waited}".strip() + (f": {errors[-1][:90]}…" if errors else " (nothing logged)")


def revoke_then_start(stack: Stack, client: SandboxClient, images: int) -> str:
    """Seed 003: the watchdog revokes a running job, then someone presses Start again."""
    job_id = client.create_job(images=images, start=True)["id"]
    client.wait_for_status(job_id, "STARTED", timeout=30)
    stack.revoke(job_id)
    client.start(job_id)
    client.wait_for_status(job_id, "STARTED", timeout=30)
    messages = client.job(job_id, queue=True)["queue"]["messages"]
    return f"{messages} messages for {images} images ({messages - images} duplicates)"


def run_mode(fixes: str, console: Console, images: int) -> Outcome:
    settings = {**DEMO_SETTINGS, "FIXES": fixes}
    window = float(settings["ACK_WAIT"]) * int(settings["MAX_DELIVER"]) + 4 * float(settings["SWEEP_INTERVAL"]) + 2
    with console.status(f"fixes {fixes}: starting NATS, Redis, PostgreSQL, web, Celery worker and beat…"):
        stack = Stack(settings=settings).start()
    try:
        with SandboxClient(stack.api_url, stack.token) as client, httpx.Client(
                base_url=stack.api_url, headers={"Authorization": f"Token {stack.token}"}, timeout=30) as api:
            with console.status(f"fixes {fixes}: seed 000 — tasks exhaust max_deliver while workers crash…"):
                dead = dead_tasks(client, api, images=20, window=window)
            with console.status(f"fixes {fixes}: seed 003 — REVOKE, then Start again…"):
                duplicates = revoke_then_start(stack, client, images=images)
    finally:
        with console.status(f"fixes {fixes}: stopping the stack…"):
            stack.stop()
    return Outcome(dead, duplicates)


def demo(images: int = 200, console: Console | None = None) -> dict[str, Outcome]:
    console = console or Console()
    outcomes = {mode: run_mode(mode, console, images) for mode in ("off", "on")}
    table = Table(title="Incident reproduction (ack_wait 1 s, max_deliver 3, sweep every 1 s)")
    table.add_column("incident")
    table.add_column("fixes off (Antenna today)", style="red")
    table.add_column("fixes on", style="green")
    table.add_row("seed 000: every task dies", outcomes["off"].dead_job, outcomes["on"].dead_job)
    table.add_row("seed 003: REVOKE → Start", outcomes["off"].duplicates, outcomes["on"].duplicates)
    console.print(table)
    return outcomes
