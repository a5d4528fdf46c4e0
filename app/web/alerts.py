"""``GET /v1/alerts``: the alerts firing now and the notification history, for API clients."""

from __future__ import annotations

import hmac
import os

from flask import Blueprint, current_app, jsonify, request
from redis.exceptions import RedisError

from app.db import get_redis
from app.ops.alerts import HISTORY_SIZE, AlertHistory
from app.web import error_response

bp = Blueprint("alerts", __name__)

DEFAULT_LIMIT = 100
"""History entries returned when the request does not ask for a number."""


def require_api_key():
    """None when the request carries one of ``GATEWAY_API_KEYS`` as a bearer token, else a 401.

    Every configured key is compared in constant time, so timing reveals neither which key nor
    how much of one matched. With no keys configured the API is closed.
    """
    configured = [k.strip() for k in os.environ.get("GATEWAY_API_KEYS", "").split(",") if k.strip()]
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    matched = False
    for key in configured:
        matched |= hmac.compare_digest(given.strip().encode(), key.encode())
    if scheme.lower() != "bearer" or not matched:
        response = error_response(401, "unauthorized", "a valid API key is required")
        response.headers["WWW-Authenticate"] = 'Bearer realm="wa-gateway"'
        return response
    return None


@bp.get("/v1/alerts")
def list_alerts():
    """``{"firing": [...], "history": [...]}``, newest first; ``?limit=`` 1 to 1000 (default 100)."""
    refused = require_api_key()
    if refused is not None:
        return refused
    raw_limit = request.args.get("limit", str(DEFAULT_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= HISTORY_SIZE:
        return error_response(
            400, "invalid_limit", f"limit must be an integer from 1 to {HISTORY_SIZE}"
        )
    history = AlertHistory(get_redis(current_app.config["SETTINGS"].redis_url))
    try:
        return jsonify({"firing": history.firing(), "history": history.recent(int(raw_limit))})
    except RedisError:
        response = error_response(
            503, "redis_unavailable", "alert history is unavailable; try again later"
        )
        response.headers["Retry-After"] = "5"
        return response
