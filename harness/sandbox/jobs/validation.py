"""Strict checks of worker request bodies; each failure names the field (→ 400 with a message)."""

from __future__ import annotations

import json
import math

from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError

MAX_BATCH_SIZE = 1000
MAX_PAGE = 1000
MAX_REPLY_SUBJECT = 500  # ImageResult.reply_subject's column


class TooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "request too large"


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


def results(body, max_results: int) -> list[dict]:
    """Every field the store touches is checked here, so one bad result can never sink its batch after the
    POST was answered "queued". Over `max_results` results: 413."""
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        _fail("request body must be an object with a 'results' list")
    items = body["results"]
    if len(items) > max_results:
        raise TooLarge(f"'results' holds {len(items)} results; at most {max_results} per request")
    no_nul(items, "results")
    if not items:
        _fail("'results' must not be empty")
    for i, item in enumerate(items):
        _result_item(item, f"results[{i}]")
    return items


def _result_item(item, at: str) -> None:
    if not isinstance(item, dict):
        _fail(f"{at} must be an object")
    subject = item.get("reply_subject")
    if not isinstance(subject, str) or not 1 <= len(subject) <= MAX_REPLY_SUBJECT:
        _fail(f"{at}.reply_subject must be a non-empty string of at most {MAX_REPLY_SUBJECT} characters")
    result = item.get("result")
    if not isinstance(result, dict):
        _fail(f"{at}.result must be an object")
    at = f"{at}.result"
    if "error" in result:
        _typed(result, "error", str, at, "a string", required=True)
        if result.get("image_id") is not None:  # null is the protocol's "the worker does not know which image"
            _image_id(result["image_id"], f"{at}.image_id")
        return
    images = result.get("source_images")
    if not isinstance(images, list) or not images:
        _fail(f"{at} must have an 'error' or a non-empty 'source_images' list of {{id, url}}")
    for j, source in enumerate(images):
        if not isinstance(source, dict):
            _fail(f"{at}.source_images[{j}] must be an object")
        _image_id(source.get("id"), f"{at}.source_images[{j}].id")
        _typed(source, "url", str, f"{at}.source_images[{j}]", "a string")
    _typed(result, "pipeline", str, at, "a string", required=True)
    _typed(result, "algorithms", dict, at, "an object")
    _typed(result, "config", dict, at, "an object")
    _number(result, "total_time", at)
    detections = result.get("detections", [])
    if not isinstance(detections, list):
        _fail(f"{at}.detections must be a list")
    for j, detection in enumerate(detections):
        _detection(detection, f"{at}.detections[{j}]")


def _detection(detection, at: str) -> None:
    if not isinstance(detection, dict):
        _fail(f"{at} must be an object")
    _typed(detection, "source_image_id", str | int, at, "a string")
    bbox = detection.get("bbox")
    if bbox is not None:
        if not isinstance(bbox, dict):
            _fail(f"{at}.bbox must be an object")
        for corner in ("x1", "y1", "x2", "y2"):
            _number(bbox, corner, f"{at}.bbox")
    classifications = detection.get("classifications", [])
    if not isinstance(classifications, list):
        _fail(f"{at}.classifications must be a list")
    for k, classification in enumerate(classifications):
        where = f"{at}.classifications[{k}]"
        if not isinstance(classification, dict):
            _fail(f"{where} must be an object")
        _typed(classification, "classification", str, where, "a string")
        scores = classification.get("scores", [])
        if not isinstance(scores, list) or not all(_is_number(s) for s in scores):
            _fail(f"{where}.scores must be a list of numbers")


def _typed(obj: dict, key: str, kind, at: str, what: str, required: bool = False) -> None:
    """obj[key] is of `kind`; absent (or null, unless required) is fine."""
    value = obj.get(key)
    if (value is None and not required) or (isinstance(value, kind) and not isinstance(value, bool)):
        return
    _fail(f"{at}.{key} must be {what}")


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number(obj: dict, key: str, at: str) -> None:
    if obj.get(key) is not None and not _is_number(obj[key]):
        _fail(f"{at}.{key} must be a number")


def _image_id(value, at: str) -> None:
    """An image id: a positive integer, as a number or a string of digits (workers send strings)."""
    ok = (_is_int(value) or (isinstance(value, str) and value.isascii() and value.isdigit())) and 0 < int(value) < 2**63
    if not ok:
        _fail(f"{at} must be a positive integer image id")


def result_image_ids(items: list[dict]) -> list[tuple[str, int | None]]:
    """(field, image id) each validated result names (None: an error result naming no image); the view checks
    they are images of the job."""
    out = []
    for i, item in enumerate(items):
        result = item["result"]
        if "error" in result:
            image = result.get("image_id")
            out.append((f"results[{i}].result.image_id", None if image is None else int(image)))
        else:
            out.append((f"results[{i}].result.source_images[0].id", int(result["source_images"][0]["id"])))
    return out


def reply_subjects(body) -> list[str]:
    if not isinstance(body, dict) or not isinstance(body.get("reply_subjects"), list):
        _fail("request body must be an object with a 'reply_subjects' list")
    if not all(isinstance(s, str) and s for s in body["reply_subjects"]):
        _fail("'reply_subjects' must hold non-empty strings")
    return body["reply_subjects"]
