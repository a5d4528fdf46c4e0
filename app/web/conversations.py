"""``/v1/conversations/<wa_id>``: a conversation's state, and handing it to a person and back."""

from __future__ import annotations

import logging
import re
import time

from flask import Blueprint, current_app, jsonify, request

from app.config import Settings
from app.conversations.context import ConversationStore
from app.conversations.handoff import BY_OPERATOR, HandoffStore
from app.db import get_redis
from app.errors import ApiError
from app.web.auth import require_number, requires

log = logging.getLogger(__name__)

bp = Blueprint("conversations", __name__, url_prefix="/conversations")

CUSTOMER_SERVICE_WINDOW = 24 * 3600
"""Meta lets a business send free-form messages for 24 hours after the customer's last message."""

MAX_REASON_CHARS = 500
"""Longest handoff reason kept."""

_WA_ID = re.compile(r"^[0-9]{5,20}$")


def _settings() -> Settings:
    return current_app.config["SETTINGS"]


def _check(wa_id: str) -> str:
    """The number whose conversation with ``wa_id`` the request is about: the configured one,
    if ``wa_id`` is valid and the request's key may use that number; else raises ApiError."""
    if not _WA_ID.match(wa_id):
        raise ApiError(400, "invalid_wa_id", "wa_id must be the customer's number, digits only")
    number = _settings().phone_number_id
    require_number(number)
    return number


@bp.get("/<wa_id>")
@requires("read")
def show(wa_id: str):
    """The conversation's context, the customer's profile, the handoff state and the 24-hour
    window; 404 for a customer the gateway has never heard from."""
    number = _check(wa_id)
    redis_client = get_redis(_settings().redis_url)
    store = ConversationStore(redis_client)
    conversation = store.get(number, wa_id)
    profile = store.profile(number, wa_id)
    handoff = HandoffStore(redis_client).get(number, wa_id)
    if conversation is None and profile is None and handoff is None:
        raise ApiError(404, "conversation_not_found", f"no conversation with {wa_id}")
    last_inbound = conversation.last_inbound_at if conversation else None
    closes_at = last_inbound + CUSTOMER_SERVICE_WINDOW if last_inbound else None
    return jsonify(
        {
            "wa_id": wa_id,
            "phone_number_id": number,
            "context": (
                {**conversation.to_dict(), "expires_at": store.expires_at(number, wa_id)}
                if conversation
                else None
            ),
            "profile": profile.to_dict() if profile else None,
            "handoff": handoff.to_dict() if handoff else {"active": False},
            "window": {
                "open": bool(closes_at and closes_at > time.time()),
                "last_inbound_at": last_inbound,
                "closes_at": closes_at,
            },
        }
    )


@bp.post("/<wa_id>/handoff")
@requires("send")
def start_handoff(wa_id: str):
    """Hand the conversation to a person: 201 when it starts, 200 when it already was."""
    number = _check(wa_id)
    reason = None
    if request.get_data(cache=True):
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_json", "the body must be a JSON object")
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise ApiError(400, "invalid_reason", "reason must be a string")
        reason = reason[:MAX_REASON_CHARS] if reason else None
    handoff, started = HandoffStore(get_redis(_settings().redis_url)).start(
        number, wa_id, by=BY_OPERATOR, reason=reason
    )
    if started:
        log.info("conversation %s handed to a person by an operator", wa_id)
    return jsonify({"wa_id": wa_id, "handoff": handoff.to_dict()}), 201 if started else 200


@bp.delete("/<wa_id>/handoff")
@requires("send")
def end_handoff(wa_id: str):
    """Give the conversation back to the responder; 404 if it was not handed off."""
    number = _check(wa_id)
    if not HandoffStore(get_redis(_settings().redis_url)).end(number, wa_id):
        raise ApiError(404, "not_handed_off", f"the conversation with {wa_id} is not handed off")
    log.info("conversation %s given back to the responder", wa_id)
    return jsonify({"wa_id": wa_id, "handoff": {"active": False}})
