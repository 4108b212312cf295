"""`python -m harness.workers`: simulated workers in their own process, so chaos can SIGKILL them.

Prints one JSON line per reserved batch ({"event": "reserved", ...}) and a summary line at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from harness.workers.sim import KINDS, run_workers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.workers", description=__doc__)
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--kind", choices=KINDS, default="healthy")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--pipeline", action="append", dest="pipelines")
    parser.add_argument("--job", type=int, action="append", dest="job_ids", help="only these jobs")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--hold", type=float, default=2.0, help="seconds a slow worker holds a batch")
    parser.add_argument("--heartbeat", action="store_true", help="slow workers send in_progress")
    parser.add_argument("--until-idle", action="store_true", help="stop when there is nothing left to do")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--history", default=None, help="write the operation log here (JSON lines)")
    args = parser.parse_args(argv)

    def reserved(job_id: int, tasks: list[dict]) -> None:
        print(json.dumps({"event": "reserved", "job": job_id, "tasks": len(tasks)}), flush=True)

    from harness.history import History

    history = History()
    summary = asyncio.run(run_workers(
        args.api_url, args.token, kind=args.kind, count=args.count, pipelines=args.pipelines or ["moth-detector"],
        job_ids=args.job_ids, batch_size=args.batch_size, hold=args.hold, heartbeat=args.heartbeat,
        until_idle=args.until_idle, duration=args.duration, history=history, on_reserved=reserved))
    if args.history:
        history.to_jsonl(args.history)
    print(json.dumps({"event": "done", "reserved": summary.reserved, "posted": summary.posted,
                      "statuses": dict(summary.statuses), "http_errors": dict(summary.http_errors)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
