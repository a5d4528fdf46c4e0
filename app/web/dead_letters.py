"""``/v1/dead-letters``: list, inspect, replay and purge the messages the gateway gave up on."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from app.db import get_redis
from app.delivery.dead_letters import DIRECTIONS, REASONS, DeadLetterStore
from app.delivery.messages import MessageStore
from app.errors import ApiError
from app.web.auth import requires
from app.web.query import query_int
from tasks.enqueue import enqueue_send_message as enqueue_send
from tasks.enqueue import requeue

bp = Blueprint("dead_letters", __name__, url_prefix="/dead-letters")

DEFAULT_PAGE = 100
MAX_PAGE = 1000
"""Entries one listing returns at most."""

MAX_OFFSET = 10**9
"""Furthest a listing may start; far past any store's size, small enough for Redis."""

MAX_ERROR_CODE = 2**31 - 1
"""Largest Graph error code a filter names; Meta's codes are 32-bit integers."""

MAX_FILTER_BYTES = 16 * 1024
"""A replay filter is a few fields."""


def _invalid(field: str, message: str) -> ApiError:
    """The 422 answer for a filter or page parameter that is not valid."""
    return ApiError(422, "invalid_filter", message, field=field)


def _stores() -> tuple[DeadLetterStore, MessageStore]:
    redis_client = get_redis(current_app.config["SETTINGS"].redis_url)
    return DeadLetterStore(redis_client), MessageStore(redis_client)


def _reason(source: dict[str, Any]) -> str | None:
    reason = source.get("reason") or None
    if reason is not None and reason not in REASONS:
        raise _invalid("reason", f"must be one of {', '.join(REASONS)}")
    return reason


def _filter(source: dict[str, Any]) -> tuple[str | None, int | None]:
    reason = _reason(source)
    code = source.get("code")
    if code in (None, ""):
        return reason, None
    # int() would take True, "²" and "١٢"; a code is a JSON integer or ASCII digits.
    if isinstance(code, str) and code.isascii() and code.isdigit():
        code = int(code)
    if not isinstance(code, int) or isinstance(code, bool):
        raise _invalid("code", "must be a Graph error code (an integer)")
    return reason, code


def _direction(source: dict[str, Any]) -> str | None:
    direction = source.get("direction") or None
    if direction is not None and direction not in DIRECTIONS:
        raise _invalid("direction", f"must be one of {', '.join(DIRECTIONS)}")
    return direction


def _not_found() -> ApiError:
    return ApiError(404, "not_found", "no dead letter with this id")


@bp.get("")
@requires("dead_letters")
def list_dead_letters():
    """A page of dead letters, most recent failure first, filtered by ``reason``, ``code`` and
    ``direction`` (``inbound`` or ``outbound``)."""
    reason = _reason(request.args)
    code = query_int("code", None, 0, MAX_ERROR_CODE)
    direction = _direction(request.args)
    limit = query_int("limit", DEFAULT_PAGE, 1, MAX_PAGE)
    offset = query_int("offset", 0, 0, MAX_OFFSET)
    dead_letters, _ = _stores()
    page = dead_letters.list(reason, code, limit=limit + 1, offset=offset, direction=direction)
    return jsonify(
        {
            "dead_letters": [letter.summary() for letter in page[:limit]],
            "total": len(dead_letters),
            "next_offset": offset + limit if len(page) > limit else None,
        }
    )


@bp.get("/<message_id>")
@requires("dead_letters")
def show_dead_letter(message_id: str):
    """One dead letter in full: the message, the error, attempts, failure times, history."""
    letter = _stores()[0].get(message_id)
    if letter is None:
        raise _not_found()
    return jsonify(letter.to_dict())


@bp.post("/<message_id>/replay")
@requires("dead_letters")
def replay_dead_letter(message_id: str):
    """Send a dead-lettered message again (same id and idempotency key, attempts reset), or run
    an inbound one again."""
    dead_letters, store = _stores()
    if not dead_letters.replay(store, message_id, enqueue_send, requeue):
        raise _not_found()
    return jsonify({"id": message_id, "status": "queued"}), 202


@bp.post("/replay")
@requires("dead_letters")
def replay_matching():
    """Replay every dead letter matching ``{"reason", "code", "direction"}`` (or
    ``{"all": true}``)."""
    request.max_content_length = MAX_FILTER_BYTES
    try:
        body = json.loads(request.get_data(cache=False) or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise _invalid("body", "must be a JSON object")
    reason, code = _filter(body)
    direction = _direction(body)
    if reason is None and code is None and direction is None and body.get("all") is not True:
        raise _invalid("reason", 'give a reason or a code, or "all": true to replay everything')
    limit = body.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise _invalid("limit", "must be a positive integer")
    dead_letters, store = _stores()
    replayed = dead_letters.replay_matching(
        store, enqueue_send, reason, code, limit, direction=direction, enqueue_task=requeue
    )
    return jsonify({"replayed": replayed, "count": len(replayed)}), 202


@bp.delete("/<message_id>")
@requires("dead_letters")
def delete_dead_letter(message_id: str):
    """Drop a dead letter for good; the message record keeps its status and history."""
    if not _stores()[0].remove(message_id):
        raise _not_found()
    return "", 204
