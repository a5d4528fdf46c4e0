"""``/v1/templates``: the account's message templates as the gateway keeps them (synced with
``wa-gateway templates sync`` and kept current by Meta's template webhooks)."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, current_app, jsonify

from app.db import get_redis
from app.templates import TemplateStore
from app.web.auth import requires

bp = Blueprint("templates", __name__, url_prefix="/templates")


@bp.get("")
@requires("read")
def list_templates():
    """Every kept template, by name and language, and when they were last synced."""
    store = TemplateStore(get_redis(current_app.config["SETTINGS"].redis_url))
    synced = store.synced_at()
    return jsonify(
        {
            "templates": [t.to_dict() for t in store.all()],
            "synced_at": (
                dt.datetime.fromtimestamp(synced, dt.UTC).isoformat().replace("+00:00", "Z")
                if synced
                else None
            ),
        }
    )
