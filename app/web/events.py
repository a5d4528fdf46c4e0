"""``/v1/event-subscriptions``: where the gateway POSTs its events (docs/EVENTS.md).

``POST`` creates one (201, the only answer that shows its ``secret``), ``GET`` lists them or
shows one, ``DELETE`` removes one (deliveries already queued for it are dropped). A
subscription spans every sending number, so managing them takes the ``admin`` scope.
"""

from __future__ import annotations

import json

from flask import Blueprint, current_app, jsonify, request

from app.credentials import CredentialError, load_cipher
from app.db import get_redis
from app.errors import ApiError
from app.events.subscriptions import (
    SubscriptionRefused,
    SubscriptionStore,
    check_types,
    check_url,
)
from app.web.auth import requires

bp = Blueprint("event_subscriptions", __name__, url_prefix="/event-subscriptions")

MAX_BODY_BYTES = 16 * 1024
"""A subscription is a URL, a few types and a description."""

MAX_DESCRIPTION_CHARS = 200
"""Longest description kept."""


def _store(with_cipher: bool = False) -> SubscriptionStore:
    settings = current_app.config["SETTINGS"]
    cipher = None
    if with_cipher:
        try:
            cipher = load_cipher(settings.encryption_keys)
        except CredentialError:
            raise ApiError(
                503,
                "encryption_keys_missing",
                "secrets are stored encrypted: set GATEWAY_ENCRYPTION_KEYS "
                "('wa-gateway keys generate' makes one)",
            ) from None
    return SubscriptionStore(get_redis(settings.redis_url), cipher)


def _not_found() -> ApiError:
    return ApiError(404, "not_found", "no event subscription with this id")


@bp.post("")
@requires("admin")
def create_subscription():
    """Subscribe ``url`` to ``events``: 201 with the subscription and its ``secret``, shown once."""
    request.max_content_length = MAX_BODY_BYTES
    try:
        body = json.loads(request.get_data(cache=False))
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_subscription", "must be a JSON object", field="body")
    description = body.get("description")
    if description is not None and (
        not isinstance(description, str) or len(description) > MAX_DESCRIPTION_CHARS
    ):
        raise ApiError(
            422,
            "invalid_subscription",
            f"must be a string of at most {MAX_DESCRIPTION_CHARS} characters",
            field="description",
        )
    settings = current_app.config["SETTINGS"]
    try:
        events = check_types(body.get("events"))
        url = check_url(body.get("url"), settings.event_allow_private_urls)
    except SubscriptionRefused as refused:
        raise ApiError(422, "invalid_subscription", str(refused), field=refused.field) from None
    subscription, secret = _store(with_cipher=True).create(url, events, description)
    return jsonify({**subscription.to_dict(), "secret": secret}), 201


@bp.get("")
@requires("admin")
def list_subscriptions():
    """Every subscription, oldest first, without secrets."""
    return jsonify({"subscriptions": [s.to_dict() for s in _store().list()]})


@bp.get("/<subscription_id>")
@requires("admin")
def show_subscription(subscription_id: str):
    """One subscription, without its secret."""
    subscription = _store().get(subscription_id)
    if subscription is None:
        raise _not_found()
    return jsonify(subscription.to_dict())


@bp.delete("/<subscription_id>")
@requires("admin")
def delete_subscription(subscription_id: str):
    """Remove a subscription; its queued deliveries are dropped when they run."""
    if not _store().delete(subscription_id):
        raise _not_found()
    return "", 204
