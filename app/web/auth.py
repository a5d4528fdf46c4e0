"""Bearer API keys for the ``/v1`` API: ``Authorization: Bearer <key>``, keys from
``GATEWAY_API_KEYS`` (comma-separated, so a key can be rotated without downtime).

Every configured key is compared, in constant time, whatever the outcome of the others, so the
answer's timing says nothing about how much of a key was right. No key ever reaches a log.
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
from collections.abc import Callable
from typing import Any

from flask import current_app, request

from app.web import error_response

log = logging.getLogger(__name__)

CONFIG_KEY = "GATEWAY_API_KEYS"
"""The Flask config entry (and environment variable) holding the accepted keys."""

MIN_KEY_LENGTH = 16
"""Shorter keys are ignored (and logged, without their value): they could be guessed."""


def parse_keys(value: str) -> tuple[bytes, ...]:
    """The usable keys of a comma-separated list."""
    keys = [k.strip() for k in value.split(",") if k.strip()]
    short = [k for k in keys if len(k) < MIN_KEY_LENGTH]
    if short:
        log.error(
            "%d API key(s) in %s shorter than %d characters ignored",
            len(short),
            CONFIG_KEY,
            MIN_KEY_LENGTH,
        )
    return tuple(k.encode() for k in keys if len(k) >= MIN_KEY_LENGTH)


def configured_keys() -> tuple[bytes, ...]:
    """This app's keys: from its config, else from the environment, parsed once per app."""
    cached = current_app.extensions.get("api_keys")
    if cached is None:
        raw = current_app.config.get(CONFIG_KEY)
        if raw is None:
            raw = os.environ.get(CONFIG_KEY, "")
        cached = current_app.extensions["api_keys"] = parse_keys(
            raw if isinstance(raw, str) else ",".join(raw)
        )
        if not cached:
            log.error("%s is empty: every /v1 request will be refused", CONFIG_KEY)
    return cached


def key_is_valid(presented: bytes, keys: tuple[bytes, ...]) -> bool:
    """Whether ``presented`` is one of ``keys``, comparing against all of them in constant time."""
    match = False
    for key in keys:
        match |= hmac.compare_digest(presented, key)
    return match


def _unauthorized(code: str, message: str):
    response = error_response(401, code, message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="wa-gateway"'
    return response


def require_api_key(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse the request with 401 unless it carries a configured API key."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return _unauthorized("missing_api_key", "send Authorization: Bearer <api key>")
        if not key_is_valid(credentials.strip().encode(), configured_keys()):
            return _unauthorized("invalid_api_key", "the API key is not valid")
        return view(*args, **kwargs)

    return wrapped
