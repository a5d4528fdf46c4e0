"""``/webhooks/whatsapp``: Meta's subscription check and signed webhook deliveries.

The POST view verifies, deduplicates, enqueues and returns; it never calls Meta or parses more of
the payload than JSON decoding.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

from flask import Blueprint, current_app, jsonify, request
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from app import keys
from app.config import Settings
from app.db import get_redis
from app.ops import metrics
from app.web import error_response
from app.whatsapp.signature import SIGNATURE_HEADER, verify_signature
from tasks.inbound import process_webhook

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__)

RETRY_AFTER_SECONDS = 30
"""What a 503 suggests; Meta uses its own schedule, other senders may honour it."""


def _settings() -> Settings:
    return current_app.config["SETTINGS"]


@bp.get("/webhooks/whatsapp")
def verify_subscription():
    """Meta's subscription handshake: echo ``hub.challenge`` when the verify token matches."""
    settings = _settings()
    mode = request.args.get("hub.mode", "")
    token = request.args.get("hub.verify_token", "")
    challenge = request.args.get("hub.challenge", "")
    valid_token = hmac.compare_digest(token.encode(), settings.webhook_verify_token.encode())
    if mode != "subscribe" or not challenge or not valid_token:
        return error_response(403, "verification_failed", "hub.mode or hub.verify_token is wrong")
    response = current_app.response_class(challenge, status=200, mimetype="text/plain")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.post("/webhooks/whatsapp")
def receive():
    """Accept a signed delivery: 200 once the broker holds it, 503 when it cannot take it."""
    settings = _settings()
    body = request.get_data(cache=False)  # 413 past MAX_CONTENT_LENGTH, before reading it all
    if not verify_signature(body, request.headers.get(SIGNATURE_HEADER), settings.webhook_secrets):
        log.warning("webhook with a missing or invalid signature refused")
        metrics.record_signature_failure()
        return error_response(401, "invalid_signature", f"{SIGNATURE_HEADER} is missing or invalid")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return error_response(400, "invalid_json", "the body is not JSON")
    if not isinstance(payload, dict):
        return error_response(400, "invalid_payload", "the body must be a JSON object")

    redis_client = get_redis(settings.redis_url)
    seen_key = keys.WEBHOOK_SEEN.format(digest=hashlib.sha256(body).hexdigest())
    try:
        if redis_client.exists(seen_key):
            return jsonify({"status": "duplicate"})
        process_webhook.apply_async(args=[payload], retry=False)
    except (RedisError, OperationalError, OSError) as exc:
        log.error("broker unavailable, webhook refused with 503: %s", type(exc).__name__)
        response = error_response(503, "broker_unavailable", "try again later")
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    try:
        # After the enqueue, never before: a mark without a task would drop Meta's redelivery.
        redis_client.set(seen_key, "1", ex=keys.WEBHOOK_SEEN_TTL)
    except RedisError:
        log.warning("webhook enqueued but not marked seen; a redelivery is deduplicated later")
    return jsonify({"status": "accepted"})
