"""Client idempotency keys: a repeated request returns what the first one created.

The first request with a key claims it as *pending*, creates its messages, enqueues them and then
marks the key *done* with the ids. A repeat with the same key and the same body gets those ids and
enqueues nothing; with a different body it is a conflict; while the first is still pending it is
told to retry (a pending claim expires by itself if its request died before finishing).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import redis

from app import keys
from app.config import get_settings
from app.errors import DeliveryError

MAX_KEY_LENGTH = 255
"""Longest ``Idempotency-Key`` accepted; a UUID or a business's own reference fits easily."""

PENDING = "pending"
DONE = "done"


class IdempotencyConflict(DeliveryError):
    """The key was used before with a different body."""


class IdempotencyInProgress(DeliveryError):
    """The first request with this key has not finished yet."""


@dataclass(frozen=True)
class Claim:
    """What a key holds: the body's digest, the message ids and whether the request finished."""

    digest: str
    ids: list[str]
    state: str


def body_digest(body: Any) -> str:
    """A digest of a JSON body that ignores key order and whitespace."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyStore:
    """Idempotency keys, by the SHA-256 of the key (so any characters are safe in Redis).

    A finished request's key lives as long as the messages it created (``retention`` seconds,
    by default ``MESSAGE_RETENTION_DAYS``): a repeat gets their ids while they can be read."""

    def __init__(self, redis_client: redis.Redis, *, retention: int | None = None):
        self.redis = redis_client
        self.retention = (
            get_settings().message_retention_days * keys.DAY if retention is None else retention
        )

    @staticmethod
    def key(idempotency_key: str) -> str:
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()
        return keys.IDEMPOTENCY.format(key_digest=digest)

    def get(self, idempotency_key: str) -> Claim | None:
        raw = self.redis.get(self.key(idempotency_key))
        if raw is None:
            return None
        data = json.loads(raw)
        return Claim(data["digest"], data["ids"], data["state"])

    def claim(self, idempotency_key: str, digest: str, ids: list[str]) -> Claim | None:
        """Claim the key for a new request; None if claimed, else the earlier request's claim.

        Raises :class:`IdempotencyConflict` if the earlier request had another body and
        :class:`IdempotencyInProgress` if it is still running.
        """
        value = json.dumps({"digest": digest, "ids": ids, "state": PENDING})
        if self.redis.set(
            self.key(idempotency_key), value, nx=True, ex=keys.IDEMPOTENCY_PENDING_TTL
        ):
            return None
        existing = self.get(idempotency_key)
        if existing is None:  # expired between the two calls: claim again
            return self.claim(idempotency_key, digest, ids)
        if existing.digest != digest:
            raise IdempotencyConflict(idempotency_key)
        if existing.state != DONE:
            raise IdempotencyInProgress(idempotency_key)
        return existing

    def complete(self, idempotency_key: str, digest: str, ids: list[str]) -> None:
        """Mark the key's request finished, for as long as its messages can be read."""
        value = json.dumps({"digest": digest, "ids": ids, "state": DONE})
        self.redis.set(self.key(idempotency_key), value, ex=self.retention)

    def release(self, idempotency_key: str) -> None:
        """Give up a claim whose request failed, so the client's retry starts afresh."""
        self.redis.delete(self.key(idempotency_key))
