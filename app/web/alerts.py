"""``GET /v1/alerts``: the alerts firing now and the notification history, for API clients."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from redis.exceptions import RedisError

from app.db import get_redis
from app.ops.alerts import HISTORY_SIZE, AlertHistory
from app.web import error_response
from app.web.auth import check_api_key

bp = Blueprint("alerts", __name__)

DEFAULT_LIMIT = 100
"""History entries returned when the request does not ask for a number."""


@bp.get("/v1/alerts")
def list_alerts():
    """``{"firing": [...], "history": [...]}``, newest first; ``?limit=`` 1 to 1000 (default 100)."""
    refused = check_api_key()
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
