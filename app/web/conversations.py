"""``/v1/conversations/<customer_id>``: a conversation's state, and handing it to a person and back.

``customer_id`` is the customer's phone number or business-scoped user id (BSUID, or parent BSUID):
the contact book finds the one conversation behind either. Answers name the customer's phone
(``wa_id``, null when Meta withholds it) and ``customer``, the ids the book knows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from app.config import Settings
from app.conversations.context import ConversationStore
from app.conversations.customers import PHONE, CustomerBook, kind_of
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


def _settings() -> Settings:
    return current_app.config["SETTINGS"]


@dataclass(frozen=True)
class _Customer:
    key: str
    """The customer key their conversation is stored under."""
    ids: dict[str, Any]
    """What the answer says about who they are: ``wa_id`` and ``customer``."""


def _customer(customer_id: str) -> _Customer:
    """The customer a URL names, by phone or (parent) BSUID; 400 for anything else."""
    kind = kind_of(customer_id)  # ids matched whole: "573001112299\n" is no customer
    if kind is None:
        raise ApiError(
            400,
            "invalid_wa_id",
            "must be the customer's number (digits only) or business-scoped user id",
        )
    settings = _settings()
    require_number(settings.phone_number_id)
    book = CustomerBook(get_redis(settings.redis_url))
    key = book.key_for(settings.phone_number_id, customer_id)
    known = book.get(settings.phone_number_id, key)
    phone = (known.wa_id if known else None) or (customer_id if kind == PHONE else None)
    described = known.to_dict() if known else {"key": key, "wa_id": phone}
    return _Customer(key, {"wa_id": phone, "customer": {**described, "wa_id": phone}})


@bp.get("/<customer_id>")
@requires("read")
def show(customer_id: str):
    """The conversation's context, the customer's profile, the handoff state and the 24-hour
    window; 404 for a customer the gateway has never heard from."""
    customer = _customer(customer_id)
    wa_id = customer.key
    settings = _settings()
    redis_client = get_redis(settings.redis_url)
    number = settings.phone_number_id
    store = ConversationStore(redis_client)
    conversation = store.get(number, wa_id)
    profile = store.profile(number, wa_id)
    handoff = HandoffStore(redis_client).get(number, wa_id)
    if conversation is None and profile is None and handoff is None:
        raise ApiError(404, "conversation_not_found", f"no conversation with {customer_id}")
    last_inbound = conversation.last_inbound_at if conversation else None
    closes_at = last_inbound + CUSTOMER_SERVICE_WINDOW if last_inbound else None
    return jsonify(
        {
            **customer.ids,
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


@bp.post("/<customer_id>/handoff")
@requires("send")
def start_handoff(customer_id: str):
    """Hand the conversation to a person: 201 when it starts, 200 when it already was."""
    customer = _customer(customer_id)
    reason = None
    if request.get_data(cache=True):
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_json", "the body must be a JSON object")
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise ApiError(400, "invalid_reason", "reason must be a string")
        reason = reason[:MAX_REASON_CHARS] if reason else None
    settings = _settings()
    handoff, started = HandoffStore(get_redis(settings.redis_url)).start(
        settings.phone_number_id, customer.key, by=BY_OPERATOR, reason=reason
    )
    if started:
        log.info("conversation %s handed to a person by an operator", customer.key)
    return jsonify({**customer.ids, "handoff": handoff.to_dict()}), 201 if started else 200


@bp.delete("/<customer_id>/handoff")
@requires("send")
def end_handoff(customer_id: str):
    """Give the conversation back to the responder; 404 if it was not handed off."""
    customer = _customer(customer_id)
    settings = _settings()
    if not HandoffStore(get_redis(settings.redis_url)).end(settings.phone_number_id, customer.key):
        raise ApiError(
            404, "not_handed_off", f"the conversation with {customer_id} is not handed off"
        )
    log.info("conversation %s given back to the responder", customer.key)
    return jsonify({**customer.ids, "handoff": {"active": False}})
