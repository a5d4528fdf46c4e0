"""``/v1/conversations``: a conversation's state, handing it to a person and back, the list of
those handed off (``?handoff=active``), and an agent's answer (``POST .../messages``).

``customer_id`` is the customer's phone number or business-scoped user id (BSUID, or parent BSUID):
the contact book finds the one conversation behind either. Answers name the customer's phone
(``wa_id``, null when Meta withholds it) and ``customer``, the ids the book knows.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from app.config import Settings
from app.conversations.context import BUSINESS, ConversationStore, Exchange
from app.conversations.customers import PHONE, CustomerBook, kind_of
from app.conversations.handoff import BY_OPERATOR, HandoffStore, announce
from app.credentials import is_registered
from app.db import get_redis
from app.delivery import intake
from app.delivery.messages import MessageStore
from app.delivery.window import CustomerWindows
from app.errors import ApiError
from app.web.auth import require_number, requires
from app.web.query import invalid_parameter, query_int
from tasks.enqueue import enqueue_notify_handoff, enqueue_record_reply, enqueue_sends

log = logging.getLogger(__name__)

bp = Blueprint("conversations", __name__, url_prefix="/conversations")

CUSTOMER_SERVICE_WINDOW = 24 * 3600
"""Meta lets a business send free-form messages for 24 hours after the customer's last message."""

MAX_REASON_CHARS = 500
"""Longest handoff reason kept."""

MAX_TEXT_CHARS = 4096
"""Longest text an agent sends: Meta's limit for a text message's body."""

MAX_AGENT_CHARS = 100
"""Longest agent name kept with the turn."""

MAX_ANSWER_BYTES = 64 * 1024
"""An agent's answer is a text and a name."""

DEFAULT_PAGE = 100
MAX_PAGE = 1000
"""Conversations one listing returns at most."""

MAX_OFFSET = 10**9
"""Furthest a listing may start."""

AGENT_SOURCE = "agent"
"""The ``source`` of a turn an agent wrote, in the conversation's context."""


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
        announce(
            get_redis(settings.redis_url),
            settings.phone_number_id,
            customer.key,
            handoff,
            enqueue_notify_handoff,
        )
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


@bp.get("")
@requires("read")
def list_conversations():
    """The conversations handed to a person (``?handoff=active``, required), oldest handoff
    first, with ``limit`` and ``offset``."""
    if request.args.get("handoff") != "active":
        raise invalid_parameter("handoff", "must be active (the only listing there is)")
    limit = query_int("limit", DEFAULT_PAGE, 1, MAX_PAGE)
    offset = query_int("offset", 0, 0, MAX_OFFSET)
    settings = _settings()
    number = settings.phone_number_id
    require_number(number)
    redis_client = get_redis(settings.redis_url)
    page = HandoffStore(redis_client).active(number, limit + 1, offset)
    book = CustomerBook(redis_client)
    listed = []
    for key, handoff in page[:limit]:
        known = book.get(number, key)
        described = known.to_dict() if known else {"key": key, "wa_id": None}
        if not known and kind_of(key) == PHONE:
            described["wa_id"] = key
        listed.append(
            {
                "wa_id": described["wa_id"],
                "customer": described,
                "phone_number_id": number,
                "handoff": handoff.to_dict(),
            }
        )
    return jsonify(
        {"conversations": listed, "next_offset": offset + limit if len(page) > limit else None}
    )


def _answer_body() -> tuple[str, str | None]:
    request.max_content_length = MAX_ANSWER_BYTES
    try:
        body = json.loads(request.get_data(cache=False))
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_message", "must be a JSON object", field="body")
    text, agent = body.get("text"), body.get("agent")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT_CHARS:
        raise ApiError(
            422,
            "invalid_message",
            f"must be a non-empty string of at most {MAX_TEXT_CHARS} characters",
            field="text",
        )
    if agent is not None and (not isinstance(agent, str) or len(agent) > MAX_AGENT_CHARS):
        raise ApiError(
            422,
            "invalid_message",
            f"must be a string of at most {MAX_AGENT_CHARS} characters",
            field="agent",
        )
    return text, agent


@bp.post("/<customer_id>/messages")
@requires("send")
def answer(customer_id: str):
    """An agent's answer: sent on the high lane, recorded in the context as an agent turn.

    The 24-hour window applies as to any free-form message: closed, the answer is refused with
    422 ``window_closed`` (no template stands in for a person's words). 202 with the message id.
    """
    customer = _customer(customer_id)
    text, agent = _answer_body()
    settings = _settings()
    number = settings.phone_number_id
    redis_client = get_redis(settings.redis_url)
    address = (
        {"to": customer.ids["wa_id"]} if customer.ids["wa_id"] else {"recipient": customer.key}
    )
    message = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        **address,
        "type": "text",
        "text": {"body": text},
        "priority": "high",
    }
    try:
        submission = intake.prepare(
            message,
            phone_number_id=number,
            windows=CustomerWindows(redis_client),
            fallback=None,
            is_registered=lambda other: is_registered(redis_client, other),
            customers=CustomerBook(redis_client),
        )
    except intake.Refused as refused:
        raise ApiError(422, refused.code, refused.message, field=refused.field) from None
    accepted = intake.accept(
        [submission],
        store=MessageStore(redis_client),
        enqueue_all=enqueue_sends,
    )
    message_id = accepted.ids[0]
    exchange = Exchange(
        id=message_id,
        role=BUSINESS,
        type="text",
        text=text,
        at=time.time(),
        data={"source": AGENT_SOURCE, "agent": agent},
    )
    enqueue_record_reply(
        {"phone_number_id": number, "customer": customer.key, "exchange": exchange.to_dict()}
    )
    log.info("agent answer %s queued for conversation %s", message_id, customer.key)
    return jsonify({**customer.ids, "id": message_id, "status": "queued"}), 202
