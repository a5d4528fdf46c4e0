"""``/{version}/{waba_id}/message_templates``: the account's templates, listed page by page and
created ``PENDING``; the control API approves, rejects or re-rates them, each change with the
webhook Meta sends (see :class:`TemplateBook`)."""

from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, jsonify, request

from app.simulator.graph import authorised, refuse, unknown_object
from app.simulator.state import current_simulator

bp = Blueprint("templates", __name__)

DEFAULT_PAGE = 25
"""Templates per page unless ``limit`` says otherwise."""
MAX_PAGE = 100


def _cursor(position: int) -> str:
    return base64.urlsafe_b64encode(str(position).encode()).decode().rstrip("=")


def _position(cursor: str) -> int | None:
    try:
        value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return int(value) if value.isdigit() else None


@bp.get("/<version>/<waba_id>/message_templates")
def list_templates(version: str, waba_id: str):
    """One page of templates; ``paging.next`` while more remain."""
    sim = current_simulator()
    if not authorised():
        return refuse(190, "Invalid OAuth access token")
    if waba_id != sim.config.business_account_id:
        return unknown_object(waba_id)
    limit_raw = request.args.get("limit", str(DEFAULT_PAGE))
    after = _position(request.args["after"]) if "after" in request.args else 0
    if not limit_raw.isdigit() or not 1 <= int(limit_raw) <= MAX_PAGE or after is None:
        return refuse(100, "Invalid parameter")
    items, next_position = sim.templates.page(after, int(limit_raw))
    paging: dict[str, Any] = {"cursors": {"before": _cursor(after)}}
    if items:
        paging["cursors"]["after"] = _cursor(after + len(items))
    if next_position is not None:
        paging["next"] = f"{request.base_url}?limit={limit_raw}&after={_cursor(next_position)}"
    return jsonify({"data": items, "paging": paging})


@bp.post("/<version>/<waba_id>/message_templates")
def create_template(version: str, waba_id: str):
    """Create a template; it waits ``PENDING`` for the control API to approve or reject it."""
    sim = current_simulator()
    if not authorised():
        return refuse(190, "Invalid OAuth access token")
    if waba_id != sim.config.business_account_id:
        return unknown_object(waba_id)
    body = request.get_json(silent=True)
    try:
        template = sim.templates.create(body if isinstance(body, dict) else {})
    except ValueError as exc:
        return refuse(100, f"Invalid parameter: {exc}")
    return jsonify(
        {"id": template["id"], "status": template["status"], "category": template["category"]}
    )
