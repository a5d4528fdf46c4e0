"""Every error the web application answers, as one JSON body: ``{"error": {"code", "message"}}``.

Views raise :class:`~app.errors.ApiError`; Werkzeug's HTTP errors (404, 405, 413) and an
unavailable Redis are answered here too, so each kind of failure has one shape and one code.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException

from app.errors import ApiError, ReplicationTimeout

log = logging.getLogger(__name__)

REDIS_UNAVAILABLE = "redis_unavailable"
"""The one code of a 503 answered because Redis (store or broker) cannot be reached."""

REPLICATION_TIMEOUT = "replication_timeout"
"""The code of a 503 answered because too few replicas confirmed the write in time
(``REDIS_MIN_REPLICAS``): accepting it could lose it in a failover."""

RETRY_AFTER_SECONDS = 5
"""What that 503 suggests; Meta retries webhooks on its own schedule, API clients may honour it."""

REDIS_FAILURES = (RedisError, OperationalError, OSError)
"""Redis down, cut off or refusing writes (a read-only replica, out of memory): redis-py's errors,
kombu's for the broker, and the socket errors either may let through (the web process talks to
nothing else over the network)."""


def error_response(error: ApiError) -> Response:
    """The JSON answer for ``error``: its status, its headers, and ``{"error": {...}}``."""
    response = jsonify({"error": error.to_dict()})
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def register_error_handlers(app: Flask) -> None:
    """Answer :class:`ApiError`, HTTP errors and an unavailable Redis in the one JSON shape."""
    app.register_error_handler(ApiError, error_response)
    app.register_error_handler(HTTPException, _http_error)
    for exc_class in REDIS_FAILURES:
        app.register_error_handler(exc_class, _redis_unavailable)
    app.register_error_handler(ReplicationTimeout, _not_replicated)


PAYLOAD_TOO_LARGE = "payload_too_large"
"""The code of a 413, whether the body declared its length or came in chunks."""


def _http_error(exc: HTTPException) -> Response:
    code = (exc.name or "error").lower().replace(" ", "_")
    if exc.code == 413:  # Werkzeug's name for it changed across versions; the API's does not
        code = PAYLOAD_TOO_LARGE
    # Keep the headers the error carries (Allow on a 405), but not its HTML content type.
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    return error_response(
        ApiError(exc.code or 500, code, exc.description or exc.name, headers=headers)
    )


def _not_replicated(exc: ReplicationTimeout) -> Response:
    log.error("%s refused with 503: %s", request.endpoint, exc)
    return error_response(
        ApiError(
            503,
            REPLICATION_TIMEOUT,
            "no replica confirmed the write in time; try again later",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    )


def _redis_unavailable(exc: Exception) -> Response:
    # The class only: a redis-py message can hold the host, and the view's arguments a customer.
    log.error("%s refused with 503: Redis unavailable (%s)", request.endpoint, type(exc).__name__)
    return error_response(
        ApiError(
            503,
            REDIS_UNAVAILABLE,
            "Redis is unavailable; try again later",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    )
