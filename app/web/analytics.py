"""``/v1/analytics/pricing``: the messages Meta priced, per day, sending number, category,
billable and pricing model, from the ``pricing`` of its status webhooks."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, current_app, g, jsonify, request

from app.db import get_redis
from app.delivery.pricing import MAX_DAYS, report
from app.web.auth import require_number, requires
from app.web.query import invalid_parameter, query_date
from app.whatsapp.ids import is_phone_number_id

bp = Blueprint("analytics", __name__, url_prefix="/analytics")

DEFAULT_DAYS = 30
"""Days the report covers when ``from`` is not given: the last 30, today included."""


@bp.get("/pricing")
@requires("read")
def pricing():
    """Counts for the days ``from``..``to`` (UTC, both included; default the last 30 days),
    optionally of one ``phone_number_id``."""
    today = dt.datetime.now(dt.UTC).date()
    last = query_date("to", today)
    # The default reaches back at most to the first day there is (``to`` may be 0001-01-01).
    back = min(DEFAULT_DAYS - 1, (last - dt.date.min).days)
    first = query_date("from", last - dt.timedelta(days=back))
    if first > last:
        raise invalid_parameter("from", "must not be after to")
    if (last - first).days >= MAX_DAYS:
        raise invalid_parameter("from", f"must be at most {MAX_DAYS} days before to")
    number = request.args.get("phone_number_id")
    if number is not None:
        if not is_phone_number_id(number):
            raise invalid_parameter("phone_number_id", "must be Meta's numeric phone number id")
        require_number(number)
    settings = current_app.config["SETTINGS"]
    # A key limited to some numbers sees only theirs.
    rows = [
        row
        for row in report(get_redis(settings.redis_url), first, last, number)
        if g.api_key.may_use(row["phone_number_id"])
    ]
    return jsonify({"from": first.isoformat(), "to": last.isoformat(), "pricing": rows})
