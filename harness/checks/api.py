"""The worker API answers bad input and missing credentials with 4xx, and outages with 503 — never a 500."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from harness.checks.verdict import Verdict, no_evidence, verdict
from harness.history import Op

EXPECTED_5XX = (503,)  # "temporarily unavailable, retry after": the designed answer while NATS is away


def _status(op: Op) -> int | None:
    return op.value.get("status") if isinstance(op.value, dict) and isinstance(op.value.get("status"), int) else None


def no_server_errors(history: Sequence[Op], snapshot: dict) -> Verdict:
    """No request of a worker, a person or the fuzzer got a 5xx other than 503. No answer with a status
    code in the history (nothing was asked, or nothing answered): unknown."""
    violations, answered = [], 0
    for op in history:
        status = _status(op)
        if op.type not in ("ok", "fail") or status is None:
            continue
        answered += 1
        if status >= 500 and status not in EXPECTED_5XX:
            violations.append({"process": op.process, "f": op.f, "status": status,
                               **{k: op.value[k] for k in ("job", "path", "body") if k in op.value}})
    if not answered:
        return no_evidence("no_server_errors", "no request was answered with a status code", {"answers_with_status": 0})
    return verdict("no_server_errors", violations, {"answers_with_status": answered})


def refusals_name_the_field(history: Sequence[Op], snapshot: dict) -> Verdict:
    """Every refusal of generated bad input (400/413) names the offending field in its message (the fuzzer
    records whether it names one the schema documents). No such refusal: unknown."""
    refusals = [op for op in history if op.f == "fuzz" and op.type == "fail" and "names_field" in op.value]
    if not refusals:
        return no_evidence("refusals_name_the_field", "no generated request was refused as bad input", {"refusals": 0})
    violations = [{k: op.value.get(k) for k in ("path", "status", "error")} for op in refusals
                  if not op.value["names_field"]]
    return verdict("refusals_name_the_field", violations, {"refusals": len(refusals)})


def unauthorized_rejected(history: Sequence[Op], snapshot: dict) -> Verdict:
    """Every request sent without a valid token was refused (401/403), and every request with a token of
    another project (value "as": "other-project") too (403/404). None answered: unknown."""
    tries = [op for op in history if op.f == "unauthorized" and op.type in ("ok", "fail")]
    if not tries:
        return no_evidence("unauthorized_rejected", "no request without a valid token was answered", {"tries": 0})
    statuses = Counter(_status(op) for op in tries)
    violations = [{"path": op.value.get("path"), "status": _status(op), **({"as": op.value["as"]} if "as" in op.value else {})}
                  for op in tries if _status(op) not in _REFUSED[op.value.get("as")]]
    foreign = sum(1 for op in tries if op.value.get("as"))
    return verdict("unauthorized_rejected", violations,
                   {"tries": len(tries), "other_project_tries": foreign, **{str(k): v for k, v in statuses.items()}})


_REFUSED = defaultdict(lambda: (401, 403), {"other-project": (403, 404)})
