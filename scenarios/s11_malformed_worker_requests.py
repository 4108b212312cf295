"""Malformed and unauthorized worker requests: the worker API is fuzzed from its OpenAPI description.

Workers run on other people's machines, with other people's bugs. Any body a client can send, valid
or not, must be answered with a 4xx and a message (or a 503 while a backend is away), never a 500;
a request without a valid token must be refused. Reservations are fuzzed on a job that is not
running, so the fuzzer cannot also act as a fleet of vanishing workers; results and in_progress
calls go to the running job, which healthy workers then finish.

Fixes off: a reply subject that is not a JetStream ack subject reaches NATS code unchecked.
Fixes on: it is refused per task ("rejected_invalid"); zero 5xx.
"""

from scenarios.base import Ctx, scenario
from scenarios.evidence import server_error
from scenarios.fuzz import fuzz


@scenario(targets={"sandbox"}, targets_why="its fuzzer drives the sandbox's OpenAPI document, not Antenna's routes",
          expect_off={"no_server_errors"}, evidence=server_error(), guards={"fencing"})
def run(ctx: Ctx) -> None:
    job = ctx.job(images=4)
    idle = ctx.job(images=2, start=False, judged=False)
    sent = fuzz(ctx.target.api_url, ctx.target.token, ctx.history, {"*": job, "reserveTasks": idle},
                examples=25, seed=ctx.seed)
    ctx.note(f"fuzzer sent {sent} requests")
    ctx.workers("healthy", job, background=True)
