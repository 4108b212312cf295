"""Strict checks of worker request bodies; each failure names the field (→ 400 with a message)."""

from __future__ import annotations

import json

from rest_framework.exceptions import ValidationError

MAX_BATCH_SIZE = 1000
MAX_PAGE = 1000


def _fail(message: str):
    raise ValidationError({"error": message})


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def batch_size(body) -> int:
    if not isinstance(body, dict):
        _fail("request body must be a JSON object")
    size = body.get("batch_size")
    if not _is_int(size) or not 1 <= size <= MAX_BATCH_SIZE:
        _fail(f"batch_size must be an integer between 1 and {MAX_BATCH_SIZE}")
    return size


def page(query, default_limit: int) -> tuple[int, int]:
    """limit/offset of a list request; DRF's paginator would silently fall back, we say what is wrong."""
    try:
        limit, offset = int(query.get("limit", default_limit)), int(query.get("offset", 0))
    except ValueError:
        _fail("limit and offset must be integers")
    if not 1 <= limit <= MAX_PAGE or not 0 <= offset <= 2**31:
        _fail(f"limit must be between 1 and {MAX_PAGE}, offset between 0 and 2^31")
    return limit, offset


def no_nul(value, where: str) -> None:
    """PostgreSQL cannot store NUL in text or jsonb: refuse it up front rather than fail while saving."""
    if "\\u0000" in json.dumps(value):  # one C pass; walk the value only when it may hold a NUL
        _walk_for_nul(value, where)


def _walk_for_nul(value, where: str) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            _fail(f"{where} must not contain NUL characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk_for_nul(key, where)
            _walk_for_nul(item, where)
    elif isinstance(value, list):
        for item in value:
            _walk_for_nul(item, where)


def results(body) -> list[dict]:
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        _fail("request body must be an object with a 'results' list")
    no_nul(body["results"], "results")
    items = body["results"]
    if not items:
        _fail("'results' must not be empty")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            _fail(f"results[{i}] must be an object")
        if not isinstance(item.get("reply_subject"), str) or not item["reply_subject"]:
            _fail(f"results[{i}].reply_subject must be a non-empty string")
        result = item.get("result")
        if not isinstance(result, dict):
            _fail(f"results[{i}].result must be an object")
        if "error" in result:
            if not isinstance(result["error"], str):
                _fail(f"results[{i}].result.error must be a string")
            if result.get("image_id") is not None and not isinstance(result["image_id"], str | int):
                _fail(f"results[{i}].result.image_id must be a string or null")
            continue
        images = result.get("source_images")
        if not isinstance(images, list) or not images or not all(isinstance(s, dict) and "id" in s for s in images):
            _fail(f"results[{i}].result must have an 'error' or a non-empty 'source_images' list of {{id, url}}")
        if not isinstance(result.get("pipeline"), str):
            _fail(f"results[{i}].result.pipeline must be a string")
        detections = result.get("detections", [])
        if not isinstance(detections, list) or not all(isinstance(d, dict) for d in detections):
            _fail(f"results[{i}].result.detections must be a list of objects")
    return items


def reply_subjects(body) -> list[str]:
    if not isinstance(body, dict) or not isinstance(body.get("reply_subjects"), list):
        _fail("request body must be an object with a 'reply_subjects' list")
    if not all(isinstance(s, str) and s for s in body["reply_subjects"]):
        _fail("'reply_subjects' must hold non-empty strings")
    return body["reply_subjects"]
