"""``/v1/messages``: the send API. Views validate, record, enqueue and return an id.

- ``POST /v1/messages``: one Cloud API message object plus an optional ``priority`` and
  ``phone_number_id`` (the sending number: the configured one by default, or one registered with
  ``wa-gateway numbers add``); 202 once the broker holds its send task.
- ``POST /v1/messages/batch``: ``{"messages": [...]}``, up to 1,000, all or none accepted.
- ``GET /v1/messages/<id>``: status, ``wamid``, attempts, error and history.

An ``Idempotency-Key`` header makes a POST safe to repeat: the same key and body return the same
ids (``Idempotent-Replayed: true``) and enqueue nothing; the same key with another body is 409.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from app.config import Settings
from app.credentials import is_registered
from app.db import get_redis
from app.delivery import intake
from app.delivery.idempotency import (
    MAX_KEY_LENGTH,
    IdempotencyConflict,
    IdempotencyInProgress,
    IdempotencyStore,
    body_digest,
)
from app.delivery.messages import MessageStore
from app.delivery.window import CustomerWindows, FallbackTemplate
from app.web import error_response
from app.web.auth import require_api_key
from tasks.enqueue import enqueue_sends

log = logging.getLogger(__name__)

bp = Blueprint("messages", __name__, url_prefix="/v1")

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"

MAX_MESSAGE_BYTES = 256 * 1024
"""Largest body of ``POST /v1/messages``; a message object is a few kilobytes at most."""

MAX_BATCH_BYTES = 16 * 1024 * 1024
"""Largest body of ``POST /v1/messages/batch``: 1,000 messages of up to 16 KiB each."""

BROKER_RETRY_AFTER = 5
"""Seconds a 503 suggests waiting when Redis cannot take the messages."""


class BadRequest(Exception):
    """A request refused before its messages are looked at; carries the response."""

    def __init__(self, response):
        self.response = response


def _settings() -> Settings:
    return current_app.config["SETTINGS"]


def _redis():
    return get_redis(_settings().redis_url)


def fallback_template() -> FallbackTemplate | None:
    """The app's ``WINDOW_FALLBACK_TEMPLATE`` (config, else environment), parsed once."""
    if "window_fallback" not in current_app.extensions:
        spec = current_app.config.get("WINDOW_FALLBACK_TEMPLATE")
        current_app.extensions["window_fallback"] = (
            FallbackTemplate.parse(spec) if spec is not None else FallbackTemplate.from_settings()
        )
    return current_app.extensions["window_fallback"]


def _json_body(max_bytes: int) -> Any:
    request.max_content_length = max_bytes  # 413 past it, before the body is read
    raw = request.get_data(cache=False)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(error_response(400, "invalid_json", "the body is not JSON")) from None


def _idempotency_key() -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise BadRequest(
            _refusal(
                intake.Refused(
                    "invalid_idempotency_key",
                    IDEMPOTENCY_HEADER,
                    f"must be 1 to {MAX_KEY_LENGTH} characters",
                )
            )
        )
    return key


def _refusal(refused: intake.Refused, status: int = 422):
    response = jsonify({"error": refused.to_dict()})
    response.status_code = status
    return response


def _prepare(body: Any) -> intake.Submission:
    redis_client = _redis()
    return intake.prepare(
        body,
        phone_number_id=_settings().phone_number_id,
        windows=CustomerWindows(redis_client),
        fallback=fallback_template(),
        is_registered=lambda number: is_registered(redis_client, number),
    )


def _accept(submissions: list[intake.Submission], key: str | None, body: Any):
    """Record and enqueue; returns (ids, statuses, replayed) or raises BadRequest with the answer."""
    redis_client = _redis()
    store = MessageStore(redis_client)
    try:
        accepted = intake.accept(
            submissions,
            store=store,
            enqueue_all=enqueue_sends,
            idempotency=IdempotencyStore(redis_client),
            idempotency_key=key,
            digest=body_digest(body),
        )
        statuses = (
            intake.statuses(store, accepted.ids)
            if accepted.replayed
            else ["queued"] * len(accepted.ids)
        )
    except IdempotencyConflict:
        raise BadRequest(
            error_response(
                409,
                "idempotency_conflict",
                f"this {IDEMPOTENCY_HEADER} was used with a different body",
            )
        ) from None
    except IdempotencyInProgress:
        response = error_response(
            409, "request_in_progress", f"a request with this {IDEMPOTENCY_HEADER} is running"
        )
        response.headers["Retry-After"] = "1"
        raise BadRequest(response) from None
    except (RedisError, OperationalError, OSError) as exc:
        log.error("broker unavailable, messages refused with 503: %s", type(exc).__name__)
        response = error_response(503, "broker_unavailable", "try again later")
        response.headers["Retry-After"] = str(BROKER_RETRY_AFTER)
        raise BadRequest(response) from None
    return accepted.ids, statuses, accepted.replayed


def _accepted(payload: dict[str, Any], replayed: bool):
    response = jsonify(payload)
    response.status_code = 202
    if replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return response


@bp.post("/messages")
@require_api_key
def create_message():
    """Accept one message: 202 with its id once durably enqueued."""
    try:
        key = _idempotency_key()
        body = _json_body(MAX_MESSAGE_BYTES)
        try:
            submission = _prepare(body)
        except intake.Refused as refused:
            return _refusal(refused)
        ids, statuses, replayed = _accept([submission], key, body)
    except BadRequest as bad:
        return bad.response
    return _accepted({"id": ids[0], "status": statuses[0]}, replayed)


@bp.post("/messages/batch")
@require_api_key
def create_batch():
    """Accept up to 1,000 messages, each validated; all are accepted or none."""
    try:
        key = _idempotency_key()
        body = _json_body(MAX_BATCH_BYTES)
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not messages:
            return _refusal(intake.Refused("invalid_batch", "messages", "must be a non-empty list"))
        if len(messages) > intake.MAX_BATCH:
            return _refusal(
                intake.Refused(
                    "invalid_batch", "messages", f"must hold at most {intake.MAX_BATCH} messages"
                )
            )
        submissions, errors = [], []
        for index, message in enumerate(messages):
            try:
                submissions.append(_prepare(message))
            except intake.Refused as refused:
                errors.append({"index": index, **refused.to_dict()})
        if errors:
            response = jsonify(
                {
                    "error": {
                        "code": "invalid_batch",
                        "field": "messages",
                        "message": f"{len(errors)} of {len(messages)} messages refused; "
                        "none was accepted",
                        "errors": errors,
                    }
                }
            )
            response.status_code = 422
            return response
        ids, statuses, replayed = _accept(submissions, key, body)
    except BadRequest as bad:
        return bad.response
    return _accepted(
        {"messages": [{"id": i, "status": s} for i, s in zip(ids, statuses, strict=True)]},
        replayed,
    )


@bp.get("/messages/<message_id>")
@require_api_key
def get_message(message_id: str):
    """A message's status, Meta's id, attempts, error and history."""
    record = MessageStore(_redis()).get(message_id)
    if record is None:
        return error_response(404, "not_found", "no message with this id")
    return jsonify(record.to_dict())
