"""``/webhooks/whatsapp``: Meta's subscription check and signed webhook deliveries.

The POST view verifies, deduplicates, enqueues and returns; it never calls Meta or parses more of
the payload than JSON decoding.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time

from flask import Blueprint, current_app, jsonify, request

import celeryconfig
from app import keys
from app.config import Settings
from app.db import confirm_replicated
from app.errors import ApiError
from app.ops import metrics
from app.whatsapp.signature import SIGNATURE_HEADER, verify_signature
from tasks.inbound import process_webhook
from tasks.publish import TaskPublisher

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__)

TIMESTAMP_HEADER = "X-Webhook-Timestamp"
"""Unix seconds at which a trusted proxy received the request; checked when
``WEBHOOK_MAX_AGE_SECONDS`` is set (Meta itself sends no timestamp)."""

MAX_JSON_DEPTH = 32
"""Deepest nesting accepted. Meta's payloads are under 10 levels; a deeper body is hostile, and
deep enough ones would exhaust the recursion of every JSON encoder on their way to the workers."""


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
        raise ApiError(403, "verification_failed", "hub.mode or hub.verify_token is wrong")
    response = current_app.response_class(challenge, status=200, mimetype="text/plain")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.post("/webhooks/whatsapp")
def receive():
    """Accept a signed delivery: 200 once the broker holds it (and, with ``REDIS_MIN_REPLICAS``,
    that many replicas); when Redis cannot take it, the application answers 503 and Meta
    delivers it again."""
    settings = _settings()
    body = request.get_data(cache=False)  # 413 past MAX_CONTENT_LENGTH, before reading it all
    if not verify_signature(body, request.headers.get(SIGNATURE_HEADER), settings.webhook_secrets):
        log.warning("webhook with a missing or invalid signature refused")
        metrics.record_signature_failure()
        raise ApiError(401, "invalid_signature", f"{SIGNATURE_HEADER} is missing or invalid")
    if settings.webhook_max_age and not _fresh(request.headers.get(TIMESTAMP_HEADER), settings):
        raise ApiError(401, "stale_request", f"{TIMESTAMP_HEADER} is missing or older than allowed")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the body is not JSON") from None
    except RecursionError:
        raise _too_deep() from None
    if not isinstance(payload, dict):
        raise ApiError(400, "invalid_payload", "the body must be a JSON object")
    if json_depth(payload) > MAX_JSON_DEPTH:
        raise _too_deep()

    publisher: TaskPublisher = current_app.extensions["task_publisher"]
    # The seen-mark and the task are written in one atomic step: a redelivery is either
    # dropped because its task is queued, or queued; never dropped with nothing queued.
    queued = publisher.publish_once(
        process_webhook.name,
        [payload],
        queue=celeryconfig.QUEUE_INBOUND,
        dedup_key=keys.WEBHOOK_SEEN.format(digest=hashlib.sha256(body).hexdigest()),
        dedup_ttl=keys.WEBHOOK_SEEN_TTL,
        argsrepr=f"<webhook of {len(body)} bytes>",  # no customer text in Flower or logs
    )
    # A duplicate waits too: the first delivery may have been refused for want of a replica.
    confirm_replicated(publisher.redis, settings.redis_min_replicas, settings.redis_wait_timeout)
    return jsonify({"status": "accepted" if queued else "duplicate"})


def _too_deep() -> ApiError:
    return ApiError(400, "too_deep", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")


def _fresh(header: str | None, settings: Settings) -> bool:
    try:
        stamped = int(header or "")
    except ValueError:
        return False
    return abs(time.time() - stamped) <= settings.webhook_max_age


def json_depth(value: object) -> int:
    """How deeply ``value`` nests lists and objects (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest
