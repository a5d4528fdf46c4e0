"""``/v1/messages``: the send API. Views validate, record, enqueue and return an id.

- ``POST /v1/messages``: one Cloud API message object (to ``to``, a phone number, ``recipient``,
  a business-scoped user id, or both: ``to`` wins, as at Meta) plus an optional ``priority`` and
  ``phone_number_id`` (the sending number: the configured one by default, or one registered with
  ``wa-gateway numbers add``); 202 once the broker holds its send task.
- ``POST /v1/messages/batch``: ``{"messages": [...]}``, up to 1,000, all or none accepted.
- ``GET /v1/messages/<id>``: status, ``wamid``, attempts, error and history.

A lane of a sending number that holds its cap of messages (``SEND_QUEUE_CAPS``: bulk 100,000 by
default) answers 429 ``queue_full`` with ``Retry-After``; replies to customers, which the
inbound pipeline records itself, are never refused.

An ``Idempotency-Key`` header makes a POST safe to repeat: the same key and body return the same
ids (``Idempotent-Replayed: true``) and enqueue nothing; the same key with another body is 409.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from app.config import Settings
from app.conversations.customers import CustomerBook
from app.conversations.optout import OptOutBook
from app.credentials import is_registered
from app.db import confirm_replicated, get_redis
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
from app.errors import ApiError
from app.templates import TemplateStore
from app.web.auth import require_number, requires
from tasks.enqueue import enqueue_sends

bp = Blueprint("messages", __name__, url_prefix="/messages")

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"

MAX_MESSAGE_BYTES = 256 * 1024
"""Largest body of ``POST /v1/messages``; a message object is a few kilobytes at most."""

MAX_BATCH_BYTES = 16 * 1024 * 1024
"""Largest body of ``POST /v1/messages/batch``: 1,000 messages of up to 16 KiB each."""


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


def json_body(max_bytes: int) -> Any:
    request.max_content_length = max_bytes  # 413 past it, before the body is read
    raw = request.get_data(cache=False)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the body is not JSON") from None


def _idempotency_key() -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ApiError(
            422,
            "invalid_idempotency_key",
            f"must be 1 to {MAX_KEY_LENGTH} characters",
            field=IDEMPOTENCY_HEADER,
        )
    return key


def _refusal(refused: intake.Refused) -> ApiError:
    """The 422 answer for a message the intake refused, naming the field at fault."""
    return ApiError(422, refused.code, refused.message, field=refused.field)


def _prepare_many(
    bodies: list[Any], templates: intake.RequestTemplates
) -> list[intake.Submission | intake.Refused]:
    """The validated submission, or the refusal, of each message object (the customers' keys
    read in one round trip for them all); raises :class:`ApiError` 403 if the request's key may
    not send from the number of a message that was not refused."""
    redis_client = _redis()
    prepared = intake.prepare_many(
        bodies,
        phone_number_id=_settings().phone_number_id,
        windows=CustomerWindows(redis_client),
        fallback=fallback_template(),
        is_registered=lambda number: is_registered(redis_client, number),
        customers=CustomerBook(redis_client),
        templates=templates,
        opt_outs=OptOutBook(redis_client),
    )
    for submission in prepared:
        if isinstance(submission, intake.Submission):
            require_number(submission.phone_number_id or _settings().phone_number_id)
    return prepared


def _accept(submissions: list[intake.Submission], key: str | None, body: Any):
    """Record and enqueue; returns (ids, statuses, replayed) or raises :class:`ApiError`.

    An unreachable Redis or broker propagates: the application answers it with 503, and
    nothing was kept (``intake.accept`` records nothing it could not enqueue). With
    ``REDIS_MIN_REPLICAS``, a write no replica confirmed in time is a 503 too (it was queued:
    a retry with the same ``Idempotency-Key`` returns its ids)."""
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
            caps=intake.LaneCaps.from_settings(_settings()),
        )
        statuses = (
            intake.statuses(store, accepted.ids)
            if accepted.replayed
            else ["queued"] * len(accepted.ids)
        )
    except IdempotencyConflict:
        raise ApiError(
            409,
            "idempotency_conflict",
            f"this {IDEMPOTENCY_HEADER} was used with a different body",
        ) from None
    except intake.QueueFull as full:
        raise ApiError(
            429,
            "queue_full",
            str(full),
            field="priority",
            headers={"Retry-After": str(full.retry_after)},
        ) from None
    except IdempotencyInProgress:
        raise ApiError(
            409,
            "request_in_progress",
            f"a request with this {IDEMPOTENCY_HEADER} is running",
            headers={"Retry-After": "1"},
        ) from None
    settings = _settings()
    confirm_replicated(redis_client, settings.redis_min_replicas, settings.redis_wait_timeout)
    return accepted.ids, statuses, accepted.replayed


def _accepted(payload: dict[str, Any], replayed: bool):
    response = jsonify(payload)
    response.status_code = 202
    if replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return response


@bp.post("")
@requires("send")
def create_message():
    """Accept one message: 202 with its id once durably enqueued."""
    key = _idempotency_key()
    body = json_body(MAX_MESSAGE_BYTES)
    (submission,) = _prepare_many([body], intake.RequestTemplates(TemplateStore(_redis())))
    if isinstance(submission, intake.Refused):
        raise _refusal(submission)
    ids, statuses, replayed = _accept([submission], key, body)
    return _accepted({"id": ids[0], "status": statuses[0]}, replayed)


@bp.post("/batch")
@requires("send")
def create_batch():
    """Accept up to 1,000 messages, each validated; all are accepted or none."""
    key = _idempotency_key()
    body = json_body(MAX_BATCH_BYTES)
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not messages:
        raise ApiError(422, "invalid_batch", "must be a non-empty list", field="messages")
    if len(messages) > intake.MAX_BATCH:
        raise ApiError(
            422,
            "invalid_batch",
            f"must hold at most {intake.MAX_BATCH} messages",
            field="messages",
        )
    submissions, errors = [], []
    templates = intake.RequestTemplates(TemplateStore(_redis()))
    for index, prepared in enumerate(_prepare_many(messages, templates)):
        if isinstance(prepared, intake.Refused):
            errors.append({"index": index, **prepared.to_dict()})
        else:
            submissions.append(prepared)
    if errors:
        raise ApiError(
            422,
            "invalid_batch",
            f"{len(errors)} of {len(messages)} messages refused; none was accepted",
            field="messages",
            errors=errors,
        )
    ids, statuses, replayed = _accept(submissions, key, body)
    return _accepted(
        {"messages": [{"id": i, "status": s} for i, s in zip(ids, statuses, strict=True)]},
        replayed,
    )


@bp.get("/<message_id>")
@requires("read")
def get_message(message_id: str):
    """A message's status, Meta's id, attempts, error and history."""
    record = MessageStore(_redis()).get(message_id)
    if record is None:
        raise ApiError(404, "not_found", "no message with this id")
    require_number(record.phone_number_id or _settings().phone_number_id)
    return jsonify(record.to_dict())
