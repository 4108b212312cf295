"""The worker's HTTP calls, sent the way the AMI Data Companion sends them, each recorded in the history.

Same URLs (no trailing slash on /jobs), query parameters, bodies and `Authorization: Token <key>` header;
redirects are followed as `requests` follows them. Retry policy as the real worker's session has it: a GET is
retried 3 times on 500/502/503/504 and on network errors (Retry-After honoured on 413/429/503, else
exponential backoff 0, 1, 2 s); a POST is retried only when the connection could not be made, never after
a status or a read error. Responses are parsed with the real worker's models (protocol.py): a 2xx body it
would reject counts as no answer.

Every HTTP attempt is an `invoke` op followed by `ok` (2xx), `fail` (an HTTP error status, or a GET with no
answer) or `info` (a POST whose outcome is unknown: no answer, or a body the worker cannot read). Values
carry `job`, `path` and, once answered, `status`, so the checkers can find them.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from harness.history import History
from harness.workers.protocol import JobList, JobListItem, ResultResponse, Task, TaskList, TasksRequest

RETRIES = 3
RETRY_STATUSES = (500, 502, 503, 504)
RETRY_AFTER_STATUSES = (413, 429, 503)
BACKOFF_FACTOR = 0.5
TIMEOUTS = {"list": 30.0, "reserve": 30.0, "post": 60.0, "heartbeat": 30.0}  # as the real worker's calls
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)  # the request never left: safe to retry any method


def backoff(retry: int) -> float:
    """urllib3's exponential backoff before retry number `retry` (1-based): 0, 1, 2, 4 ... seconds."""
    return 0.0 if retry <= 1 else BACKOFF_FACTOR * 2 ** (retry - 1)


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), if it has one."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.replace(".", "", 1).isdigit():
        return float(value)
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class WorkerClient:
    """One worker's connection to the API. `sleep` is awaited between retries; if it returns False (the
    worker was told to stop) the call gives up. `errors` counts HTTP error statuses and unreadable answers."""

    def __init__(self, api_url: str, token: str, name: str, history: History, *,
                 auth_scheme: str = "Token", retry_after_cap: float = 10.0,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 transport: httpx.AsyncBaseTransport | None = None):
        self.http = httpx.AsyncClient(base_url=api_url.rstrip("/"), follow_redirects=True, transport=transport,
                                      headers={"Authorization": f"{auth_scheme} {token}"})
        self.name, self.history, self.sleep = name, history, sleep
        self.retry_after_cap = retry_after_cap
        self.errors: Counter = Counter()  # HTTP status code -> count; "invalid" -> unreadable 2xx bodies

    async def aclose(self) -> None:
        await self.http.aclose()

    # --- the four calls -----------------------------------------------------------------------------------

    async def list_jobs(self, pipelines: list[str]) -> list[JobListItem]:
        """Incomplete async_api jobs for these pipelines, first page only; [] on any failure (as the worker)."""
        params = {"pipeline__slug__in": ",".join(pipelines), "ids_only": 1, "incomplete_only": 1,
                  "dispatch_mode": "async_api"}
        listed = await self._call("list", "GET", "/jobs", None, JobList, params=params,
                                  describe=lambda body: {"jobs": [item.id for item in body.results]})
        return listed.results if listed is not None else []

    async def reserve(self, job: int, batch_size: int) -> list[Task] | None:
        """Tasks handed out (may be []), or None when the call failed."""
        body = TasksRequest(batch_size=batch_size).model_dump()
        answer = await self._call("reserve", "POST", f"/jobs/{job}/tasks/", job, TaskList, json=body,
                                  extra={"batch_size": batch_size},
                                  describe=lambda tasks: {"reply_subjects": [t.reply_subject for t in tasks.tasks]})
        return answer.tasks if answer is not None else None

    async def post_results(self, job: int, results: list[dict]) -> ResultResponse | None:
        subjects = [entry.get("reply_subject") for entry in results]
        return await self._call("post", "POST", f"/jobs/{job}/result/", job, ResultResponse,
                                json={"results": results}, extra={"reply_subjects": subjects},
                                describe=_describe_post)

    async def in_progress(self, job: int, reply_subjects: list[str]) -> bool:
        """Sandbox extension: tell NATS the worker still works on these (+WPI). True if accepted."""
        response = await self._call("heartbeat", "POST", f"/jobs/{job}/tasks/in_progress/", job, None,
                                    json={"reply_subjects": reply_subjects}, extra={"reply_subjects": reply_subjects})
        return response is not None

    # --- recording and retrying ---------------------------------------------------------------------------

    async def _call(self, f: str, method: str, path: str, job: int | None, model: type[BaseModel] | None, *,
                    extra: dict | None = None, describe: Callable[[Any], dict] | None = None,
                    **request: Any) -> Any:
        """One logical call: attempts until an answer or the retries run out. Returns the parsed body (or
        True for model=None) on a readable 2xx answer, else None."""
        base = {"job": job, "path": path}
        for attempt in range(RETRIES + 1):
            tag = {"attempt": attempt} if attempt else {}
            self.history.append(self.name, f, "invoke", {**base, **(extra or {}), **tag})
            try:
                response = await self.http.request(method, path, timeout=TIMEOUTS[f], **request)
            except httpx.HTTPError as exc:
                retry = attempt < RETRIES and (method == "GET" or isinstance(exc, NOT_SENT))
                unknown = method != "GET" and not isinstance(exc, NOT_SENT)  # it may have landed
                self.history.append(self.name, f, "info" if unknown else "fail",
                                    {**base, **tag, "error": repr(exc)})
                if not retry or await self.sleep(backoff(attempt + 1)) is False:
                    return None
                continue
            answered = {**base, **tag, "status": response.status_code}
            if response.history:
                answered["redirects"] = [str(hop.url) for hop in response.history]
            if response.status_code >= 400:
                self.errors[response.status_code] += 1
                self.history.append(self.name, f, "fail", answered)
                if method != "GET" or response.status_code not in RETRY_STATUSES or attempt == RETRIES:
                    return None
                if await self.sleep(self._delay(response, attempt + 1)) is False:
                    return None
                continue
            if model is None:
                self.history.append(self.name, f, "ok", answered)
                return True
            try:
                body = model.model_validate_json(response.content)
            except ValidationError as exc:  # the real worker would raise here and drop what it got
                self.errors["invalid"] += 1
                problem = exc.errors(include_url=False)[0] if exc.errors() else {}
                self.history.append(self.name, f, "fail" if method == "GET" else "info",
                                    {**answered, "invalid": f"{problem.get('loc')}: {problem.get('msg')}"})
                return None
            self.history.append(self.name, f, "ok", {**answered, **(describe(body) if describe else {})})
            return body
        return None

    def _delay(self, response: httpx.Response, retry: int) -> float:
        told = retry_after(response) if response.status_code in RETRY_AFTER_STATUSES else None
        return min(told, self.retry_after_cap) if told is not None else backoff(retry)


def _describe_post(answer: ResultResponse) -> dict:
    refused = {t.reply_subject: t.status for t in answer.tasks if t.status != "queued"}
    return {"queued": answer.results_queued, "statuses": sorted({t.status for t in answer.tasks}),
            **({"refused": refused} if refused else {})}
