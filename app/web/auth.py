"""Bearer API keys for the ``/v1`` API: ``Authorization: Bearer <key>``.

Keys are those of ``GATEWAY_API_KEYS`` (comma-separated, so a key can be rotated without
downtime) and those created with ``wa-gateway apikeys create``; all are held only as SHA-256
digests and any of them can be revoked at once, without a restart (:mod:`app.api_keys`).
No key ever reaches a log or an error.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import current_app, request
from redis.exceptions import RedisError

from app.api_keys import ApiKeyRegistry
from app.db import get_redis
from app.web import error_response

log = logging.getLogger(__name__)

CONFIG_KEY = "GATEWAY_API_KEYS"
"""The Flask config entry (and environment variable) holding the keys given at start."""


def registry() -> ApiKeyRegistry:
    """This app's key registry, built on first use from its config, else the environment."""
    cached = current_app.extensions.get("api_keys")
    if cached is None:
        raw = current_app.config.get(CONFIG_KEY)
        if raw is None:
            raw = current_app.config["SETTINGS"].api_keys
        redis_client = get_redis(current_app.config["SETTINGS"].redis_url)
        cached = ApiKeyRegistry(redis_client, raw if isinstance(raw, str) else ",".join(raw))
        current_app.extensions["api_keys"] = cached
    return cached


def _unauthorized(code: str, message: str):
    response = error_response(401, code, message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="wa-gateway"'
    return response


def check_api_key():
    """None when the request carries an active API key; otherwise the error response (401, or
    503 when the key store cannot be read). Usable as a blueprint's ``before_request``."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return _unauthorized("missing_api_key", "send Authorization: Bearer <api key>")
    try:
        key_id = registry().verify(credentials.strip())
    except RedisError:
        return error_response(503, "store_unavailable", "try again later")
    if key_id is None:
        return _unauthorized("invalid_api_key", "the API key is not valid")
    return None


def require_api_key(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse the request unless it carries an active API key (see :func:`check_api_key`)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        refused = check_api_key()
        return refused if refused is not None else view(*args, **kwargs)

    return wrapped
