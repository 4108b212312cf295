"""Bad input → 4xx with a message; NATS/Redis/broker down → 503 with Retry-After. Never a 500 for those."""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_handler

from fixes.jetstream import QueueUnavailable

log = logging.getLogger(__name__)
RETRY_AFTER = "2"


def _unavailable_errors() -> tuple[type[Exception], ...]:
    import kombu.exceptions
    import redis

    return (QueueUnavailable, redis.ConnectionError, redis.TimeoutError, kombu.exceptions.OperationalError)


def unavailable(what: str) -> Response:
    response = Response({"error": f"{what} temporarily unavailable"}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    response["Retry-After"] = RETRY_AFTER
    return response


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):  # Django's own answer is a bare HTML 400
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response({"error": f"request body is larger than {limit} bytes"},
                        status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, _unavailable_errors()):
        log.warning("503 for %s: %r", context.get("request") and context["request"].path, exc)
        return unavailable("Task queue" if isinstance(exc, QueueUnavailable) else "Backend")
    response = drf_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        response.data = {"error": str(response.data["detail"])}
    return response
