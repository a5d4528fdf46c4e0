"""Event subscriptions: where a business wants its events, which ones, and the secret that signs
them.

A subscription's secret is shown once, when it is created; Redis holds it encrypted with the
gateway's Fernet keys (``GATEWAY_ENCRYPTION_KEYS``, like sending numbers' tokens). A URL is
checked when the subscription is created and again before every delivery (a host may resolve
elsewhere by then): ``http`` or ``https`` only, no credentials in it, and no loopback, private,
link-local or otherwise non-public address unless ``EVENT_ALLOW_PRIVATE_URLS`` is set.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
from cryptography.fernet import InvalidToken, MultiFernet

from app import keys
from app.credentials import REPLACE_IF_UNCHANGED
from app.errors import EventError

MESSAGE_RECEIVED = "message.received"
"""A customer's message was recorded in its conversation."""
MESSAGE_STATUS = "message.status"
"""Meta reported a status (sent, delivered, read, failed) of a message the gateway sent."""
CONVERSATION_HANDOFF = "conversation.handoff"
"""A conversation was handed to a person (by the customer's request or an operator)."""
DEAD_LETTER_CREATED = "dead_letter.created"
"""A message or a unit of inbound work was dead-lettered."""
CAMPAIGN_FINISHED = "campaign.finished"
"""A campaign sent its last message."""

EVENT_TYPES = (
    MESSAGE_RECEIVED,
    MESSAGE_STATUS,
    CONVERSATION_HANDOFF,
    DEAD_LETTER_CREATED,
    CAMPAIGN_FINISHED,
)

MAX_URL_LENGTH = 2048
"""Longest subscription URL accepted."""

SECRET_BYTES = 32
"""Random bytes of a subscription's secret (it is shown as URL-safe base64)."""

Resolve = Callable[[str, int], Iterable[str]]
"""The addresses a host name resolves to, as strings; raises ``OSError`` when it does not."""


class SubscriptionRefused(EventError):
    """A subscription (or a delivery to it) names a URL or event types the gateway refuses; the
    message says which rule, never the URL's credentials."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6)."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def check_url(url: object, allow_private: bool, resolve: Resolve = resolve_host) -> str:
    """``url`` if events may be POSTed to it; raises :class:`SubscriptionRefused` otherwise.

    Every address the host resolves to must be public: one private answer among public ones is
    enough for a rebinding resolver to pick it at connection time.
    """
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise SubscriptionRefused("url", f"must be a URL of at most {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        raise SubscriptionRefused("url", "must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise SubscriptionRefused("url", "is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise SubscriptionRefused("url", "must be an http or https URL")
    if not parts.hostname:
        raise SubscriptionRefused("url", "must name a host")
    if parts.username is not None or parts.password is not None:
        raise SubscriptionRefused("url", "must not carry credentials; events are signed instead")
    if allow_private:
        return url
    try:
        addresses = list(resolve(parts.hostname, port))
    except (OSError, UnicodeError):
        raise SubscriptionRefused("url", "its host does not resolve") from None
    if not addresses:
        raise SubscriptionRefused("url", "its host does not resolve")
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone is no part of it
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if not ip.is_global or ip.is_multicast:
            raise SubscriptionRefused(
                "url",
                "must not point at a loopback, private or link-local address "
                "(EVENT_ALLOW_PRIVATE_URLS=true allows it, for development)",
            )
    return url


def check_types(types: object) -> list[str]:
    """The event types asked for, deduplicated in order; raises :class:`SubscriptionRefused`."""
    if not isinstance(types, list) or not types:
        raise SubscriptionRefused("events", "must be a non-empty list of event types")
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise SubscriptionRefused("events", f"must be among {', '.join(EVENT_TYPES)}")
    return list(dict.fromkeys(types))


@dataclass(frozen=True)
class Subscription:
    """Where some of the gateway's events go. It never holds the secret."""

    id: str
    url: str
    events: list[str]
    created_at: float
    description: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class SubscriptionStore:
    """Event subscriptions in Redis, each with its secret encrypted by ``cipher``."""

    def __init__(self, redis_client: redis.Redis, cipher: MultiFernet | None = None):
        self.redis = redis_client
        self.cipher = cipher

    def create(
        self, url: str, events: list[str], description: str | None = None
    ) -> tuple[Subscription, str]:
        """Store a new subscription; it and its secret (the only time the secret is given)."""
        if self.cipher is None:
            raise ValueError("creating a subscription needs the encryption keys")
        secret = "whsec_" + secrets.token_urlsafe(SECRET_BYTES)
        subscription = Subscription(
            id="sub_" + uuid.uuid4().hex,
            url=url,
            events=events,
            created_at=time.time(),
            description=description,
        )
        entry = {**subscription.to_dict(), "secret": self.cipher.encrypt(secret.encode()).decode()}
        self.redis.hset(keys.EVENT_SUBSCRIPTIONS, subscription.id, json.dumps(entry))
        return subscription, secret

    def get(self, subscription_id: str) -> Subscription | None:
        raw = self.redis.hget(keys.EVENT_SUBSCRIPTIONS, subscription_id)
        return _subscription(json.loads(raw)) if raw else None

    def list(self) -> list[Subscription]:
        """Every subscription, oldest first (read once per :func:`read_once` block)."""
        held = _read_once.get()
        if held is None:
            return self.listed(self.redis.hvals(keys.EVENT_SUBSCRIPTIONS))
        if held.raw is None:
            held.raw = self.redis.hvals(keys.EVENT_SUBSCRIPTIONS)
        return self.listed(held.raw)

    def matching(self, event_type: str) -> list[Subscription]:
        """The subscriptions that want ``event_type``: one round trip, empty when there are none."""
        return [s for s in self.list() if event_type in s.events]

    @staticmethod
    def read_in(pipe: Any) -> None:
        """Queue the read of every subscription on ``pipe``, a pipeline about to run anyway: its
        result, given to :meth:`listed`, is what :meth:`list` would have read, without a round
        trip of its own."""
        pipe.hvals(keys.EVENT_SUBSCRIPTIONS)

    @staticmethod
    def listed(raw_entries: Iterable[str] | Exception) -> list[Subscription]:
        """The subscriptions of a read queued by :meth:`read_in`, oldest first; raises the
        read's error if it failed."""
        if isinstance(raw_entries, Exception):
            raise raw_entries
        entries = [json.loads(raw) for raw in raw_entries]
        return sorted((_subscription(e) for e in entries), key=lambda s: (s.created_at, s.id))

    def delete(self, subscription_id: str) -> bool:
        """Forget a subscription; events already queued for it are dropped when they run."""
        return bool(self.redis.hdel(keys.EVENT_SUBSCRIPTIONS, subscription_id))

    def rotate(self) -> int:
        """Re-encrypt every secret under the newest key (``wa-gateway keys rotate``); how many.
        Compare-and-set per entry, so a subscription deleted or created meanwhile is left as is."""
        if self.cipher is None:
            raise ValueError("rotating secrets needs the encryption keys")
        replace = self.redis.register_script(REPLACE_IF_UNCHANGED)
        rotated = 0
        for subscription_id, raw in self.redis.hgetall(keys.EVENT_SUBSCRIPTIONS).items():
            entry = json.loads(raw)
            try:
                entry["secret"] = self.cipher.rotate(entry["secret"].encode()).decode()
            except InvalidToken:
                raise EventError(
                    f"no key in GATEWAY_ENCRYPTION_KEYS decrypts the secret of {subscription_id}"
                ) from None
            rotated += replace(
                keys=[keys.EVENT_SUBSCRIPTIONS], args=[subscription_id, raw, json.dumps(entry)]
            )
        return rotated

    def secret(self, subscription_id: str) -> str | None:
        """The decrypted secret, or None if there is no such subscription."""
        if self.cipher is None:
            raise ValueError("reading a secret needs the encryption keys")
        raw = self.redis.hget(keys.EVENT_SUBSCRIPTIONS, subscription_id)
        if raw is None:
            return None
        try:
            return self.cipher.decrypt(json.loads(raw)["secret"].encode()).decode()
        except InvalidToken:
            raise EventError(
                f"no key in GATEWAY_ENCRYPTION_KEYS decrypts the secret of {subscription_id}"
            ) from None


@dataclass
class _Read:
    raw: list[str] | None = None


_read_once: ContextVar[_Read | None] = ContextVar("wa_subscriptions_read_once", default=None)


@contextmanager
def read_once() -> Iterator[None]:
    """Read the subscriptions at most once in this block, at the first event that needs them: for
    work applied together (a batch of status webhooks), which then costs one read instead of one
    per event. A subscription created or deleted during the block is seen from the next one on,
    as it would be a moment later."""
    token = _read_once.set(_Read())
    try:
        yield
    finally:
        _read_once.reset(token)


def _subscription(entry: dict) -> Subscription:
    return Subscription(
        id=entry["id"],
        url=entry["url"],
        events=entry["events"],
        created_at=entry["created_at"],
        description=entry.get("description"),
    )
