"""``/webhooks/whatsapp``: Meta's subscription check and signed webhook deliveries.

The POST receiver verifies, deduplicates, enqueues and returns; it never calls Meta or reads more
of the payload than JSON decoding and a look at its shape (statuses alone go to the status lane,
``tasks.statuslane``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Iterable

from flask import Blueprint, Flask, current_app, request
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.wsgi import get_content_length

import celeryconfig
from app import keys
from app.config import Settings
from app.db import confirm_replicated
from app.errors import ApiError
from app.ops import metrics
from app.web.body import BoundedBody
from app.whatsapp.signature import SIGNATURE_HEADER, verify_signature
from app.whatsapp.webhook import carries_only_statuses
from tasks.inbound import process_webhook
from tasks.publish import TaskPublisher
from tasks.statuslane import StatusLane

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__)

WEBHOOK_PATH = "/webhooks/whatsapp"

TIMESTAMP_HEADER = "X-Webhook-Timestamp"
"""Unix seconds at which a trusted proxy received the request; checked when
``WEBHOOK_MAX_AGE_SECONDS`` is set (Meta itself sends no timestamp)."""

SIGNATURE_ENVIRON = "HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_")
TIMESTAMP_ENVIRON = "HTTP_" + TIMESTAMP_HEADER.upper().replace("-", "_")

MAX_JSON_DEPTH = 32
"""Deepest nesting accepted. Meta's payloads are under 10 levels; a deeper body is hostile, and
deep enough ones would exhaust the recursion of every JSON encoder on their way to the workers."""


def _settings() -> Settings:
    return current_app.config["SETTINGS"]


@bp.get(WEBHOOK_PATH)
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


# POSTs are answered by WebhookReceiver before Flask sees them; the rule is here so that Flask
# names POST in a 405's Allow and gives the view's endpoint to the error answers' logs.
bp.add_url_rule(WEBHOOK_PATH, "receive", methods=["POST"])

_ANSWERS = {
    queued: json.dumps(
        {"status": "accepted" if queued else "duplicate"}, separators=(",", ":")
    ).encode()
    + b"\n"
    for queued in (True, False)
}
"""The two bodies of a 200, as Flask's ``jsonify`` writes them."""


class WebhookReceiver:
    """The WSGI application in front of Flask that answers ``POST /webhooks/whatsapp``.

    It verifies, decodes, deduplicates and enqueues, and answers 200 once the broker holds the
    delivery (and, with ``REDIS_MIN_REPLICAS``, that many replicas); when Redis cannot take it,
    503, and Meta delivers it again. Every other request, and every refusal, goes through Flask:
    its error handlers give the one error shape. This path carries every delivery Meta makes,
    and Flask's request context, routing and response objects were a third of its CPU.
    """

    def __init__(self, flask_app: Flask, publisher: TaskPublisher):
        self.flask_app = flask_app
        self.next = flask_app.wsgi_app
        self.publisher = publisher
        self.status_lane = StatusLane(publisher.redis, publisher)
        self.settings: Settings = flask_app.config["SETTINGS"]
        self.max_bytes: int = flask_app.config["MAX_CONTENT_LENGTH"]
        # On the metrics port (app/web/metrics.py) Flask answers everything, this path with 404.
        self.metrics_port = str(self.settings.metrics_port or "")

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if (
            environ.get("PATH_INFO") != WEBHOOK_PATH
            or environ.get("REQUEST_METHOD") != "POST"
            or environ.get("SERVER_PORT") == self.metrics_port
        ):
            return self.next(environ, start_response)
        try:
            answer = _ANSWERS[self.receive(environ)]
        except Exception as exc:  # every refusal is answered by Flask's handlers
            return self.refuse(exc, environ, start_response)
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))]
        )
        return [answer]

    def receive(self, environ: dict) -> bool:
        """Accept a signed delivery; True if it was queued, False if it is a duplicate."""
        settings = self.settings
        body = read_body(environ, self.max_bytes)
        header = environ.get(SIGNATURE_ENVIRON)
        if not verify_signature(body, header, settings.webhook_secrets):
            log.warning("webhook with a missing or invalid signature refused")
            metrics.record_signature_failure()
            raise ApiError(401, "invalid_signature", f"{SIGNATURE_HEADER} is missing or invalid")
        if settings.webhook_max_age and not _fresh(environ.get(TIMESTAMP_ENVIRON), settings):
            raise ApiError(
                401, "stale_request", f"{TIMESTAMP_HEADER} is missing or older than allowed"
            )
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "invalid_json", "the body is not JSON") from None
        except RecursionError:
            raise _too_deep() from None
        if not isinstance(payload, dict):
            raise ApiError(400, "invalid_payload", "the body must be a JSON object")
        # Nothing nests deeper than the brackets it opens: counting them is far cheaper than
        # walking the payload, and real webhooks open fewer than the limit.
        opened = body.count(b"{") + body.count(b"[")
        if opened > MAX_JSON_DEPTH and json_depth(payload) > MAX_JSON_DEPTH:
            raise _too_deep()

        # The seen-mark and the task (or the status lane's entry) are written in one atomic
        # step: a redelivery is either dropped because its delivery is queued, or queued; never
        # dropped with nothing queued.
        dedup_key = keys.WEBHOOK_SEEN.format(digest=hashlib.sha256(body).hexdigest())
        text = _utf8(body)
        if text is not None and carries_only_statuses(payload):
            # Most deliveries: applied many to a task (tasks.statuslane), as Meta signed them.
            queued = self.status_lane.push(
                text, dedup_key=dedup_key, dedup_ttl=keys.WEBHOOK_SEEN_TTL
            )
        else:
            queued = self.publisher.publish_once(
                process_webhook.name,
                [payload],
                queue=celeryconfig.QUEUE_INBOUND,
                dedup_key=dedup_key,
                dedup_ttl=keys.WEBHOOK_SEEN_TTL,
                argsrepr=f"<webhook of {len(body)} bytes>",  # no customer text in Flower or logs
            )
        # A duplicate waits too: the first delivery may have been refused for want of a replica.
        confirm_replicated(
            self.publisher.redis, settings.redis_min_replicas, settings.redis_wait_timeout
        )
        return queued

    def refuse(self, exc: Exception, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """Answer ``exc`` as Flask answers it from a view: its error handlers, else a 500."""
        app = self.flask_app
        with app.request_context(environ):
            try:
                response = app.finalize_request(app.handle_user_exception(exc))
            except Exception as unhandled:  # as Flask.wsgi_app does
                response = app.handle_exception(unhandled)
            return response(environ, start_response)


def read_body(environ: dict, max_bytes: int) -> bytes:
    """The request's body, refused as :class:`app.web.body.GatewayRequest` refuses it: 413 past
    ``max_bytes`` (before reading when the body declares its length), 400 when the client
    sends less than it declared. Read straight from the server's stream: Werkzeug's wrapper
    reading it in chunks was a tenth of this path's CPU."""
    length = get_content_length(environ)
    if length is None:
        # Only a server that ends chunked bodies itself sets wsgi.input_terminated.
        if not environ.get("wsgi.input_terminated"):
            return b""
        return BoundedBody(environ["wsgi.input"], max_bytes).read()
    if length > max_bytes:
        raise RequestEntityTooLarge()
    body = environ["wsgi.input"].read(length)
    if len(body) < length:
        raise ClientDisconnected()
    return body


def _utf8(body: bytes) -> str | None:
    """The body as text when it is UTF-8, as Meta sends it (JSON may also come as UTF-16 or 32,
    which only the task's own re-encoding carries)."""
    try:
        return body.decode()
    except UnicodeDecodeError:
        return None


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
