"""``/v1/dead-letters``: list, inspect, replay and purge the messages the gateway gave up on."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from app.db import get_redis
from app.delivery.dead_letters import REASONS, DeadLetterStore
from app.delivery.messages import MessageStore
from app.web import error_response
from app.web.auth import require_api_key
from tasks.enqueue import enqueue_send_message as enqueue_send

log = logging.getLogger(__name__)

bp = Blueprint("dead_letters", __name__, url_prefix="/v1/dead-letters")

DEFAULT_PAGE = 100
MAX_PAGE = 1000
"""Entries one listing returns at most."""

MAX_FILTER_BYTES = 16 * 1024
"""A replay filter is a few fields."""


class Invalid(Exception):
    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message


def _stores() -> tuple[DeadLetterStore, MessageStore]:
    redis_client = get_redis(current_app.config["SETTINGS"].redis_url)
    return DeadLetterStore(redis_client), MessageStore(redis_client)


def _invalid(exc: Invalid):
    response = jsonify(
        {"error": {"code": "invalid_filter", "field": exc.field, "message": exc.message}}
    )
    response.status_code = 422
    return response


def _filter(source: dict[str, Any]) -> tuple[str | None, int | None]:
    reason = source.get("reason") or None
    if reason is not None and reason not in REASONS:
        raise Invalid("reason", f"must be one of {', '.join(REASONS)}")
    code = source.get("code")
    if code in (None, ""):
        return reason, None
    try:
        return reason, int(code)
    except (TypeError, ValueError):
        raise Invalid("code", "must be a Graph error code (an integer)") from None


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(name, "must be an integer") from None
    if not low <= value <= high:
        raise Invalid(name, f"must be between {low} and {high}")
    return value


def _broker_down(exc: Exception):
    log.error("broker unavailable, replay refused with 503: %s", type(exc).__name__)
    response = error_response(503, "broker_unavailable", "try again later")
    response.headers["Retry-After"] = "5"
    return response


@bp.get("")
@require_api_key
def list_dead_letters():
    """A page of dead letters, most recent failure first, filtered by ``reason`` and ``code``."""
    try:
        reason, code = _filter(request.args)
        limit = _int_arg("limit", DEFAULT_PAGE, 1, MAX_PAGE)
        offset = _int_arg("offset", 0, 0, 10**9)
    except Invalid as exc:
        return _invalid(exc)
    dead_letters, _ = _stores()
    page = dead_letters.list(reason, code, limit=limit + 1, offset=offset)
    return jsonify(
        {
            "dead_letters": [letter.summary() for letter in page[:limit]],
            "total": len(dead_letters),
            "next_offset": offset + limit if len(page) > limit else None,
        }
    )


@bp.get("/<message_id>")
@require_api_key
def show_dead_letter(message_id: str):
    """One dead letter in full: the message, the error, attempts, failure times, history."""
    letter = _stores()[0].get(message_id)
    if letter is None:
        return error_response(404, "not_found", "no dead letter with this id")
    return jsonify(letter.to_dict())


@bp.post("/<message_id>/replay")
@require_api_key
def replay_dead_letter(message_id: str):
    """Send a dead-lettered message again: same id and idempotency key, attempts reset."""
    dead_letters, store = _stores()
    try:
        replayed = dead_letters.replay(store, message_id, enqueue_send)
    except (RedisError, OperationalError, OSError) as exc:
        return _broker_down(exc)
    if not replayed:
        return error_response(404, "not_found", "no dead letter with this id")
    response = jsonify({"id": message_id, "status": "queued"})
    response.status_code = 202
    return response


@bp.post("/replay")
@require_api_key
def replay_matching():
    """Replay every dead letter matching ``{"reason", "code"}`` (or ``{"all": true}``)."""
    request.max_content_length = MAX_FILTER_BYTES
    try:
        body = json.loads(request.get_data(cache=False) or b"{}")
    except (ValueError, UnicodeDecodeError):
        return error_response(400, "invalid_json", "the body is not JSON")
    if not isinstance(body, dict):
        return _invalid(Invalid("body", "must be a JSON object"))
    try:
        reason, code = _filter(body)
        if reason is None and code is None and body.get("all") is not True:
            raise Invalid("reason", 'give a reason or a code, or "all": true to replay everything')
        limit = body.get("limit")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise Invalid("limit", "must be a positive integer")
    except Invalid as exc:
        return _invalid(exc)
    dead_letters, store = _stores()
    try:
        replayed = dead_letters.replay_matching(store, enqueue_send, reason, code, limit)
    except (RedisError, OperationalError, OSError) as exc:
        return _broker_down(exc)
    response = jsonify({"replayed": replayed, "count": len(replayed)})
    response.status_code = 202
    return response


@bp.delete("/<message_id>")
@require_api_key
def delete_dead_letter(message_id: str):
    """Drop a dead letter for good; the message record keeps its status and history."""
    if not _stores()[0].remove(message_id):
        return error_response(404, "not_found", "no dead letter with this id")
    return "", 204
