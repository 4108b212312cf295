"""`python -m harness.workers`: simulated workers in their own process, so chaos can SIGKILL them mid-batch.

Prints one JSON line per reserved batch to stdout, as soon as it is reserved:
  {"event": "reserved", "worker": name, "job": id, "tasks": count, "reply_subjects": [...]}
and a summary line at the end: {"event": "done", ...Summary fields}. SIGTERM and SIGINT stop the workers
cleanly (a batch being held is abandoned, not posted). With --history, every operation is appended to that
file as it happens, so the log survives a SIGKILL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from harness.history import History
from harness.workers.sim import KINDS, run_workers


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python -m harness.workers", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--api-url", required=True, help="the worker API base, e.g. http://host:port/api/v2")
    cli.add_argument("--token", required=True)
    cli.add_argument("--kind", choices=KINDS, default="healthy")
    cli.add_argument("--count", type=int, default=1, help="workers to run concurrently")
    cli.add_argument("--pipeline", action="append", dest="pipelines", help="pipeline slug (repeatable)")
    cli.add_argument("--job", type=int, action="append", dest="job_ids",
                     help="work on these jobs only, without listing (repeatable)")
    cli.add_argument("--batch-size", type=int, default=16)
    cli.add_argument("--ack-wait", type=float, default=30.0, help="the server's ack_wait in seconds")
    cli.add_argument("--hold", type=float, default=None, help="seconds a slow worker holds a batch "
                     "(default 2 × ack-wait)")
    cli.add_argument("--heartbeat", action="store_true", help="slow workers send in_progress every ack-wait/2")
    cli.add_argument("--max-tasks", type=int, default=None, help="stop after reserving this many tasks")
    cli.add_argument("--poll-interval", type=float, default=1.0, help="sleep between idle polls")
    cli.add_argument("--until-idle", action="store_true", help="stop when no job has work left")
    cli.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    cli.add_argument("--history", default=None, help="append the operation log here (JSON lines)")
    cli.add_argument("--seed", type=int, default=None)
    return cli


def emit(event: dict) -> None:
    print(json.dumps(event), flush=True)


async def serve(args: argparse.Namespace, history: History) -> dict:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def reserved(worker: str, job: int, tasks: list[dict]) -> None:
        emit({"event": "reserved", "worker": worker, "job": job, "tasks": len(tasks),
              "reply_subjects": [task["reply_subject"] for task in tasks]})

    summary = await run_workers(
        args.api_url, args.token, kind=args.kind, count=args.count, stop=stop, duration=args.duration,
        history=history, seed=args.seed, pipelines=args.pipelines or ["moth-detector"], job_ids=args.job_ids,
        batch_size=args.batch_size, ack_wait=args.ack_wait, hold=args.hold, heartbeat=args.heartbeat,
        max_tasks=args.max_tasks, poll_interval=args.poll_interval, until_idle=args.until_idle,
        on_reserved=reserved)
    return summary.to_dict()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    history = History()
    if args.history:
        history.stream_to(args.history)
    try:
        emit({"event": "done", **asyncio.run(serve(args, history))})
    finally:
        history.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
