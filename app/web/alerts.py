"""``GET /v1/alerts``: the alerts firing now and the notification history, for API clients."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from app.db import get_redis
from app.ops.alerts import HISTORY_SIZE, AlertHistory
from app.web.auth import requires
from app.web.query import query_int

bp = Blueprint("alerts", __name__, url_prefix="/alerts")

DEFAULT_LIMIT = 100
"""History entries returned when the request does not ask for a number."""


@bp.get("")
@requires("read")
def list_alerts():
    """``{"firing": [...], "history": [...]}``, newest first; ``?limit=`` 1 to 1000 (default 100)."""
    limit = query_int("limit", DEFAULT_LIMIT, 1, HISTORY_SIZE)
    history = AlertHistory(get_redis(current_app.config["SETTINGS"].redis_url))
    return jsonify({"firing": history.firing(), "history": history.recent(limit)})
