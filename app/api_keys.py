"""API keys for the ``/v1`` API, kept only as SHA-256 digests, revocable without a restart.

Keys come from two places: ``GATEWAY_API_KEYS`` (comma-separated, read at start, hashed at once,
the plain values dropped) and keys created with ``wa-gateway apikeys create``, stored in Redis as
digests. Any key, from either place, is revoked by its id with ``wa-gateway apikeys revoke``;
every web process sees the revocation on the next request.

Each key holds scopes (:data:`SCOPES`) and may be limited to some sending numbers. Keys of
``GATEWAY_API_KEYS``, and keys stored before keys had scopes, hold ``admin``: full access, as
they always had.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import redis

from app import keys
from app.whatsapp.ids import is_phone_number_id

KEY_PREFIX = "wag_"
"""Created keys start with this, so they are recognisable in a secret scanner."""

MIN_KEY_LENGTH = 16
"""Keys shorter than this are refused: they could be guessed."""

SEND = "send"
"""Send messages and batches, and hand conversations to a person and back."""
READ = "read"
"""Read messages, conversations and alerts."""
DEAD_LETTERS = "dead_letters"
"""List, inspect, replay and purge dead letters."""
ADMIN = "admin"
"""Every scope; what keys of ``GATEWAY_API_KEYS`` and keys made before scopes hold."""

SCOPES = (SEND, READ, DEAD_LETTERS, ADMIN)
"""What a key may hold and a ``/v1`` view may require."""

UNLIMITED_SCOPES = (DEAD_LETTERS, ADMIN)
"""Scopes that span every sending number, so a key limited to numbers cannot hold them."""


def digest(key: str) -> str:
    """The SHA-256 of a key, as stored and compared."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_id(key_digest: str) -> str:
    """A key's public id: the first 12 hex digits of its digest. Safe to log and show."""
    return key_digest[:12]


@dataclass(frozen=True)
class ApiKey:
    """A key as an operator sees it: never the key itself."""

    id: str
    label: str
    source: str
    created_at: float
    revoked: bool = False
    scopes: tuple[str, ...] = (ADMIN,)
    numbers: tuple[str, ...] = ()
    """The sending numbers (``phone_number_id``) the key may use; empty for any."""

    def allows(self, scope: str) -> bool:
        """Whether the key holds ``scope``; ``admin`` holds them all."""
        return ADMIN in self.scopes or scope in self.scopes

    def may_use(self, number: str) -> bool:
        """Whether the key may send from, or read the conversations of, ``number``."""
        return not self.numbers or number in self.numbers

    @classmethod
    def from_entry(cls, entry: dict) -> ApiKey:
        """The key stored as ``entry``; one stored before keys had scopes holds ``admin``."""
        return cls(
            entry["id"],
            entry["label"],
            "redis",
            entry["created_at"],
            entry.get("revoked", False),
            tuple(entry.get("scopes", (ADMIN,))),
            tuple(entry.get("numbers", ())),
        )


def _checked(scopes: Iterable[str], numbers: Iterable[str]) -> tuple[tuple, tuple]:
    """``scopes`` and ``numbers`` sorted and deduplicated; ValueError unless each is valid."""
    scopes, numbers = tuple(sorted(set(scopes))), tuple(sorted(set(numbers)))
    if not scopes:
        raise ValueError(f"give at least one scope of {', '.join(SCOPES)}")
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}; scopes are {', '.join(SCOPES)}")
    if not all(is_phone_number_id(number) for number in numbers):
        raise ValueError("a number must be a phone_number_id: 5 to 20 digits")
    if numbers and set(scopes) & set(UNLIMITED_SCOPES):
        # Dead letters of every number are listed and replayed together; no per-number view.
        raise ValueError(f"a key limited to numbers may hold only {SEND} and {READ}")
    return scopes, numbers


class ApiKeyRegistry:
    """The keys the ``/v1`` API accepts: environment keys plus those stored in Redis."""

    def __init__(self, redis_client: redis.Redis, environment_keys: str = ""):
        self.redis = redis_client
        # Only the digests are kept; the values themselves are dropped here.
        self._environment = sorted(
            {
                digest(k)
                for k in (part.strip() for part in environment_keys.split(","))
                if len(k) >= MIN_KEY_LENGTH
            }
        )

    def create(
        self, label: str, scopes: Iterable[str], numbers: Iterable[str] = ()
    ) -> tuple[ApiKey, str]:
        """A new key holding ``scopes``, limited to ``numbers`` if any are given: its
        description, and the key itself, shown once and never stored. ValueError for no scope,
        an unknown one, a number that is not a ``phone_number_id``, or numbers given with a
        scope of :data:`UNLIMITED_SCOPES`."""
        scopes, numbers = _checked(scopes, numbers)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        key_digest = digest(key)
        api_key = ApiKey(key_id(key_digest), label, "redis", time.time(), False, scopes, numbers)
        pipe = self.redis.pipeline()
        pipe.hset(keys.API_KEYS, api_key.id, json.dumps({**asdict(api_key), "digest": key_digest}))
        pipe.hset(keys.API_KEY_DIGESTS, key_digest, api_key.id)
        pipe.execute()
        return api_key, key

    def revoke(self, api_key_id: str) -> bool:
        """Refuse the key with this id from now on; False if no key has that id."""
        for key_digest in self._environment:
            if key_id(key_digest) == api_key_id:
                self.redis.sadd(keys.API_KEYS_REVOKED, key_digest)
                return True
        raw = self.redis.hget(keys.API_KEYS, api_key_id)
        if raw is None:
            return False
        entry = json.loads(raw)
        entry["revoked"] = True
        pipe = self.redis.pipeline()
        pipe.sadd(keys.API_KEYS_REVOKED, entry["digest"])
        pipe.hdel(keys.API_KEY_DIGESTS, entry["digest"])
        pipe.hset(keys.API_KEYS, api_key_id, json.dumps(entry))
        pipe.execute()
        return True

    def list(self) -> list[ApiKey]:
        """Every key, environment keys first; none shows its value or digest."""
        revoked = self.redis.smembers(keys.API_KEYS_REVOKED)
        listed = [
            ApiKey(key_id(d), "GATEWAY_API_KEYS", "environment", 0.0, d in revoked)
            for d in self._environment
        ]
        listed += [ApiKey.from_entry(json.loads(raw)) for raw in self.redis.hvals(keys.API_KEYS)]
        return listed

    def verify(self, presented: str) -> ApiKey | None:
        """The active key ``presented`` is, with its scopes and numbers, or None."""
        if len(presented) < MIN_KEY_LENGTH:
            return None
        presented_digest = digest(presented)
        pipe = self.redis.pipeline()
        pipe.sismember(keys.API_KEYS_REVOKED, presented_digest)
        pipe.hget(keys.API_KEY_DIGESTS, presented_digest)
        revoked, stored_id = pipe.execute()
        if revoked:
            return None
        # Compare digests in constant time against every environment key, whatever matched.
        match = None
        for key_digest in self._environment:
            if hmac.compare_digest(key_digest, presented_digest):
                match = ApiKey(key_id(key_digest), "GATEWAY_API_KEYS", "environment", 0.0)
        if match is not None or stored_id is None:
            return match
        raw = self.redis.hget(keys.API_KEYS, stored_id)
        # A digest whose record is gone (removed by hand) is no key at all.
        return ApiKey.from_entry(json.loads(raw)) if raw is not None else None
