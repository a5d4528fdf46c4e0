"""Bearer API keys for the ``/v1`` API: ``Authorization: Bearer <key>``, checked in one place.

Keys are those of ``GATEWAY_API_KEYS`` (comma-separated, so a key can be rotated without
downtime) and those created with ``wa-gateway apikeys create``; all are held only as SHA-256
digests and any of them can be revoked at once, without a restart (:mod:`app.api_keys`).
No key ever reaches a log or an error.

Every ``/v1`` view declares the scope it needs with :func:`requires`; :func:`authenticate`, the
``/v1`` blueprint's only ``before_request``, checks the key and then that the key holds the
scope (``admin`` holds every scope). A view that acts for a sending number calls
:func:`require_number`, which refuses a key limited to other numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, request

from app.api_keys import SCOPES, ApiKey, ApiKeyRegistry
from app.db import get_redis
from app.errors import ApiError

log = logging.getLogger(__name__)

CONFIG_KEY = "GATEWAY_API_KEYS"
"""The Flask config entry (and environment variable) holding the keys given at start."""

SCOPE_ATTRIBUTE = "required_scope"
"""The attribute :func:`requires` sets on a view function."""

_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="wa-gateway"'}

View = TypeVar("View", bound=Callable[..., Any])


def requires(scope: str) -> Callable[[View], View]:
    """Declare the scope a ``/v1`` view needs; a view that declares none is refused to every key."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def declare(view: View) -> View:
        setattr(view, SCOPE_ATTRIBUTE, scope)
        return view

    return declare


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


def authenticate() -> None:
    """Refuse the request unless it carries an active API key holding the view's scope.

    401 without a valid key, 403 without the scope; an unreachable key store raises, and the
    application answers 503 for it like for any other Redis failure. Sets ``g.api_key``.
    """
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise ApiError(
            401,
            "missing_api_key",
            "send Authorization: Bearer <api key>",
            headers=_UNAUTHORIZED_HEADERS,
        )
    api_key = registry().verify(credentials.strip())
    if api_key is None:
        raise ApiError(
            401, "invalid_api_key", "the API key is not valid", headers=_UNAUTHORIZED_HEADERS
        )
    view = current_app.view_functions.get(request.endpoint or "")
    scope = getattr(view, SCOPE_ATTRIBUTE, None)
    if scope is None:  # fail closed: a view that forgot its scope is open to no key
        log.error("%s declares no scope; refused", request.endpoint)
        raise ApiError(403, "insufficient_scope", "this endpoint is open to no API key")
    if not api_key.allows(scope):
        raise ApiError(403, "insufficient_scope", f"this API key lacks the scope {scope}")
    g.api_key = api_key


def require_number(number: str) -> None:
    """Refuse the request (403 ``number_not_allowed``) if its key may not use ``number``."""
    api_key: ApiKey = g.api_key
    if not api_key.may_use(number):
        raise ApiError(403, "number_not_allowed", f"this API key may not use the number {number}")
