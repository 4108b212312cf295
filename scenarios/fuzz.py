"""Fuzz the worker API from its OpenAPI description (schemathesis strategies driven by Hypothesis).

Valid and invalid bodies go to every worker endpoint with a valid token; then every endpoint is
called without a token and with bad ones. Each answer is an op on the timeline: the checkers
`no_server_errors` and `unauthorized_rejected` judge them.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from pathlib import Path

import httpx

from harness.history import History

SCHEMA = Path(__file__).resolve().parents[1] / "harness" / "sandbox" / "openapi.yaml"
OTHER_PROJECT = "other-project"  # a valid token, of a user who is no member of the job's project
BAD_CREDENTIALS = ({}, {"Authorization": "Token nope"}, {"Authorization": "Bearer x"}, {"Authorization": "Token"})


REFUSALS_NAMING_A_FIELD = (400, 413, 422)  # bad input: the message must say which field is wrong


def load_schema():
    import schemathesis
    import yaml

    return schemathesis.openapi.from_dict(yaml.safe_load(SCHEMA.read_text()))


def fuzz(api_url: str, token: str, history: History, jobs: dict[str, int], examples: int = 25,
         seed: int = 0) -> int:
    """Send `examples` generated requests per operation and mode; `jobs` maps an operation id to the
    job its path names (default: jobs["*"]). Returns how many requests were sent."""
    from schemathesis import GenerationMode

    sent = [0]
    with httpx.Client(base_url=api_url.rstrip("/"), timeout=30, headers={"Authorization": f"Token {token}"}) as http:
        for operation in load_schema().get_all_operations():
            op = operation.ok()
            job = jobs.get(op.definition.raw.get("operationId"), jobs["*"])
            overrides = {"job_id": job} if "{job_id}" in op.path else None
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                strategy = op.as_strategy(generation_mode=mode, path_parameters=overrides)
                sent[0] += _send_generated(http, history, strategy, job, examples, seed)
            path = op.path.replace("{job_id}", str(job))
            for headers in BAD_CREDENTIALS:  # the client's token is replaced, or removed
                request = {"method": op.method.upper(), "url": path, "headers": {"Authorization": "", **headers}}
                if op.method.upper() == "POST":
                    request["json"] = {"batch_size": 1}
                send_one(http, history, "unauthorized", request, {"job": job, "path": path, "method": request["method"]})
                sent[0] += 1
    return sent[0]


def probe_unauthorized(api_url: str, history: History, job: int | None, anonymous_reads: bool = False,
                       other_project_token: str | None = None) -> int:
    """Every run's fixed set of requests without a valid token (no header, wrong token, other schemes), to the
    job list and, when the run has a job, to its tasks and result endpoints; with `other_project_token` (a
    valid token of a user who is no member of the job's project) also to the job's detail, tasks, result and
    in_progress. Returns how many were sent. None of them changes a job when it is wrongly let through.
    anonymous_reads: the host lets anyone read the job list (Antenna: public projects), so it is not probed."""
    paths = [] if anonymous_reads else [("GET", "/jobs/", None)]
    if job is not None:
        paths += [("POST", f"/jobs/{job}/tasks/", {"batch_size": 1}),
                  ("POST", f"/jobs/{job}/result/", {"results": []})]
    foreign = [] if job is None or other_project_token is None else [
        ("GET", f"/jobs/{job}/", None), ("POST", f"/jobs/{job}/tasks/", {"batch_size": 1}),
        ("POST", f"/jobs/{job}/result/", {"results": []}),
        ("POST", f"/jobs/{job}/tasks/in_progress/", {"reply_subjects": []})]
    with httpx.Client(base_url=api_url.rstrip("/"), timeout=30) as http:
        for method, path, body in paths:
            for headers in BAD_CREDENTIALS:
                request = {"method": method, "url": path, "headers": headers, **({"json": body} if body else {})}
                send_one(http, history, "unauthorized", request, {"job": job, "path": path, "method": method})
        for method, path, body in foreign:
            request = {"method": method, "url": path, "headers": {"Authorization": f"Token {other_project_token}"},
                       **({"json": body} if body else {})}
            send_one(http, history, "unauthorized", request,
                     {"job": job, "path": path, "method": method, "as": OTHER_PROJECT})
    return len(paths) * len(BAD_CREDENTIALS) + len(foreign)


def _send_generated(http: httpx.Client, history: History, strategy, job: int, examples: int, seed: int) -> int:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as fix_seed

    count = [0]

    @fix_seed(seed)
    @settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def send(case):
        record(http, history, "fuzz", case, job)
        count[0] += 1

    send()
    return count[0]


def record(http: httpx.Client, history: History, f: str, case, job: int) -> None:
    """Send one generated case with the client's valid token."""
    kwargs = case.as_transport_kwargs(base_url=str(http.base_url))
    request = {"method": kwargs["method"], "url": kwargs["url"], "params": kwargs.get("params"),
               "headers": {k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() != "authorization"}}
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    elif "data" in kwargs:
        request["content"] = kwargs["data"] if isinstance(kwargs["data"], bytes | str) else str(kwargs["data"])
    send_one(http, history, f, request, {"job": job, "path": case.formatted_path, "method": case.method})


def send_one(http: httpx.Client, history: History, f: str, request: dict, value: dict) -> None:
    history.append("fuzzer", f, "invoke", value)
    try:
        response = http.request(**request)
    except (httpx.HTTPError, ValueError, TypeError, UnicodeError) as exc:  # a header no client can send
        history.append("fuzzer", f, "info", {**value, "error": repr(exc)[:200]})
        return
    value = {**value, "status": response.status_code}
    if response.status_code in REFUSALS_NAMING_A_FIELD:
        value["error"] = _error_of(response)[:300]
        value["names_field"] = names_a_field(value["error"])
    if response.status_code >= 500:
        value["body"] = repr(request.get("json", request.get("content")))[:300]
        value["params"] = repr(request.get("params"))[:300]
        value["answer"] = response.text[:300]
    history.append("fuzzer", f, "ok" if response.status_code < 400 else "fail", value)


def _error_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text
    return str(body.get("error", body)) if isinstance(body, dict) else str(body)


@functools.cache
def _field_names() -> frozenset[str]:
    """Every parameter and property name the schema documents, plus the body itself."""
    import yaml

    names = {"request body", "JSON"}

    def walk(node):
        if isinstance(node, dict):
            names.update(k for k in (node.get("properties") or {}) if isinstance(k, str))
            if node.get("in") in ("query", "path") and isinstance(node.get("name"), str):
                names.add(node["name"])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(yaml.safe_load(SCHEMA.read_text()))
    return frozenset(names)


def names_a_field(message: str) -> bool:
    """The refusal names a documented field (e.g. `results[3].result.detections[0].classifications`)."""
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", message))
    return any(name in words or (" " in name and name in message) for name in _field_names())


def main(argv: list[str] | None = None) -> int:
    """A long fuzz run against a fresh sandbox stack (fixes on): `python -m scenarios.fuzz --cases 1000`."""
    import argparse
    import time

    from harness.checks import judge
    from harness.client import SandboxClient
    from harness.infra import Stack

    parser = argparse.ArgumentParser(prog="python -m scenarios.fuzz", description=main.__doc__)
    parser.add_argument("--cases", type=int, default=1000, help="generated requests in all (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    operations = len(list(load_schema().get_all_operations()))
    examples = -(-args.cases // (operations * 2))  # positive and negative cases per operation
    history, began = History(), time.time()
    with Stack() as stack, SandboxClient(stack.api_url, stack.token) as client:
        running = client.create_job(images=4, start=True)["id"]
        idle = client.create_job(images=2)["id"]
        sent = fuzz(stack.api_url, stack.token, history, {"*": running, "reserveTasks": idle},
                    examples=examples, seed=args.seed)
        sent += probe_unauthorized(stack.api_url, history, running, other_project_token=stack.outsider_token())
    took = time.time() - began
    fuzzed = [op for op in history.ops if op.f == "fuzz" and op.type in ("ok", "fail")]
    verdicts = judge(history.ops, {}, ["no_server_errors", "refusals_name_the_field", "unauthorized_rejected"])
    per_operation = Counter(f"{op.value['method']} {op.value['path']}".replace(f"/{running}/", "/{job_id}/")
                            .replace(f"/{idle}/", "/{job_id}/") for op in fuzzed)
    print(f"{len(fuzzed)} generated cases ({sent} requests with the credential probes) over {operations} "
          f"operations in {took:.0f}s; statuses {dict(sorted(Counter(op.value['status'] for op in fuzzed).items()))}")
    print("  cases per operation:", dict(per_operation))
    for verdict in verdicts:
        print(f"  {verdict.name}: {'ok' if verdict.ok else verdict.ok} {verdict.counts} {verdict.samples[:3]}")
    return 0 if all(v.ok for v in verdicts) and len(fuzzed) >= args.cases else 1


if __name__ == "__main__":
    raise SystemExit(main())
