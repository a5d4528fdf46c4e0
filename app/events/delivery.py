"""Events to the business's systems: built and queued by :func:`emit`, signed and POSTed by
:func:`deliver` (run by the ``events.deliver_event`` task, on the ``events`` queue).

An event is ``{"id", "type", "created_at", "conversation", "data"}``. ``id`` is the same for
every delivery of one occurrence (receivers deduplicate on it); ``conversation`` is
``{"id", "sequence"}`` for events about one conversation (``sequence`` counts up per
conversation, so a receiver can order what retries delivered out of order), else null.

Emitting never stops the pipeline it is called from: with no subscription for the type it costs
one Redis read (none when the caller read the subscriptions in a round trip of its own, as a send
recording its wamid does), and an event that cannot be queued is logged (type and class of error only) and
dropped. The reference for receivers is docs/EVENTS.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis
import requests

from app import __version__, keys
from app.errors import EventError
from app.events.subscriptions import EVENT_TYPES, Subscription, SubscriptionStore, check_url

log = logging.getLogger(__name__)

EVENT_HEADER = "X-Wa-Gateway-Event"
"""The event's type."""
EVENT_ID_HEADER = "X-Wa-Gateway-Event-Id"
"""The event's id, for receivers that deduplicate before reading the body."""
SIGNATURE_HEADER = "X-Wa-Gateway-Signature"
"""``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the subscription's secret>``."""

SIGNATURE_TOLERANCE = 300
"""Seconds a receiver accepts between a signature's ``t`` and its own clock (replay window)."""

EVENT_NAMESPACE = uuid.UUID("0f8c3f6e-2a1d-4c55-9a7b-3e1d2c4b5a69")
"""Namespace of event ids derived from what happened (see :func:`event_id`)."""


class DeliveryFailed(EventError):
    """The subscriber did not take the event (no connection, a timeout, or a non-2xx answer);
    the delivery is tried again later."""

    def __init__(self, message: str, status: int | None = None):
        self.status = status
        super().__init__(message)


def event_id(event_type: str, key: str | None) -> str:
    """The id of an event: derived from ``key`` (what happened, e.g. a message id and a status)
    when given, so a step that runs twice emits the same id; random otherwise."""
    value = uuid.uuid5(EVENT_NAMESPACE, f"{event_type}:{key}") if key else uuid.uuid4()
    return "evt_" + value.hex


def build_event(
    redis_client: redis.Redis,
    event_type: str,
    data: dict[str, Any],
    *,
    conversation_id: str | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """The event as it is POSTed; takes the conversation's next sequence number."""
    conversation = None
    if conversation_id is not None:
        sequence_key = keys.EVENT_SEQUENCE.format(conversation_id=conversation_id)
        pipe = redis_client.pipeline()
        pipe.incr(sequence_key)
        pipe.expire(sequence_key, keys.EVENT_SEQUENCE_TTL)
        conversation = {"id": conversation_id, "sequence": pipe.execute()[0]}
    return {
        "id": event_id(event_type, key),
        "type": event_type,
        "created_at": time.time(),
        "conversation": conversation,
        "data": data,
    }


def emit(
    redis_client: redis.Redis,
    event_type: str,
    data: dict[str, Any] | Callable[[], dict[str, Any]],
    *,
    conversation_id: str | None = None,
    key: str | None = None,
    read: list[str] | Exception | None = None,
) -> str | None:
    """Queue ``event_type`` with ``data`` for every subscription that wants it; the event's id,
    or None when nobody subscribed (or it could not be queued: logged, never raised).

    ``conversation_id`` (a customer key) numbers the event in its conversation; ``key`` names
    the occurrence, so that emitting it again gives the same event id. ``data`` may be a
    function that builds it: it is then called only when someone subscribed. ``read`` is the
    result of :meth:`SubscriptionStore.read_in`, when the caller read the subscriptions in a
    round trip it made anyway; without it they are read here.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    try:
        if read is None:
            subscriptions = SubscriptionStore(redis_client).matching(event_type)
        else:
            subscriptions = [s for s in SubscriptionStore.listed(read) if event_type in s.events]
        if not subscriptions:
            return None
        # Imported here: the broker is needed only once someone subscribed.
        from tasks.enqueue import enqueue_deliver_event

        if callable(data):
            data = data()
        event = build_event(
            redis_client, event_type, data, conversation_id=conversation_id, key=key
        )
        for subscription in subscriptions:
            enqueue_deliver_event(subscription.id, event)
    except Exception as exc:  # noqa: BLE001 - an event must never fail what it reports on
        log.error("event %s not queued: %s", event_type, type(exc).__name__)
        return None
    return event["id"]


def body_of(event: dict[str, Any]) -> bytes:
    """The bytes POSTed (and signed) for ``event``."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Wa-Gateway-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance: float = SIGNATURE_TOLERANCE,
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance`` seconds of ``now``:
    what a receiver runs (docs/EVENTS.md has the same recipe in a few lines)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    timestamp = fields.get("t", "")
    if not timestamp.isascii() or not timestamp.isdigit() or "v1" not in fields:
        return False
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > tolerance:
        return False
    expected = sign(secret, int(timestamp), body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields["v1"])


def deliver(
    subscription: Subscription,
    secret: str,
    event: dict[str, Any],
    *,
    session: requests.Session,
    timeout: float,
    allow_private: bool,
) -> int:
    """POST ``event``, signed, to the subscription's URL; the answer's status.

    The URL is checked again first (raises ``SubscriptionRefused``: its host may now resolve to
    a private address). Redirects are not followed: one could lead anywhere. Raises
    :class:`DeliveryFailed` for anything but a 2xx answer.
    """
    check_url(subscription.url, allow_private)
    body = body_of(event)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"wa-gateway/{__version__}",
        EVENT_HEADER: event["type"],
        EVENT_ID_HEADER: event["id"],
        SIGNATURE_HEADER: sign(secret, int(time.time()), body),
    }
    try:
        response = session.post(
            subscription.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        )
    except requests.RequestException as exc:
        # The class only: a requests message holds the URL, which may carry a token.
        raise DeliveryFailed(f"no answer ({type(exc).__name__})") from None
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"the receiver answered {response.status_code}", response.status_code)
    return response.status_code
