"""API keys for the ``/v1`` API, kept only as SHA-256 digests, revocable without a restart.

Keys come from two places: ``GATEWAY_API_KEYS`` (comma-separated, read at start, hashed at once,
the plain values dropped) and keys created with ``wa-gateway apikeys create``, stored in Redis as
digests. Any key, from either place, is revoked by its id with ``wa-gateway apikeys revoke``;
every web process sees the revocation on the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass

import redis

from app import keys

KEY_PREFIX = "wag_"
"""Created keys start with this, so they are recognisable in a secret scanner."""

MIN_KEY_LENGTH = 16
"""Keys shorter than this are refused: they could be guessed."""


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

    def create(self, label: str) -> tuple[ApiKey, str]:
        """A new key: its description, and the key itself, shown once and never stored."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        key_digest = digest(key)
        api_key = ApiKey(key_id(key_digest), label, "redis", time.time())
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
        for raw in self.redis.hgetall(keys.API_KEYS).values():
            entry = json.loads(raw)
            listed.append(
                ApiKey(entry["id"], entry["label"], "redis", entry["created_at"], entry["revoked"])
            )
        return listed

    def verify(self, presented: str) -> str | None:
        """The id of the active key ``presented`` is, or None."""
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
                match = key_id(key_digest)
        return match or stored_id
