"""AI replies cached in Redis, and the counters behind the cache-hit-rate metric.

A reply is reused only for the same backend, the same normalised input, the same structured
input and the same context fingerprint (what the responder would have seen), so a cached reply is
exactly what the backend would have been asked to answer. JSON only.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import redis

from app import keys
from app.conversations.responders.interface import Inbound, Responder
from app.conversations.text import normalise
from app.ops import metrics


@dataclass(frozen=True)
class CacheStats:
    """Cache hits and misses, and responder failures, across every worker since the start."""

    hits: int
    misses: int
    timeouts: int
    errors: int

    @property
    def hit_rate(self) -> float | None:
        """Hits over lookups, or None before the first lookup."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hit_rate,
            "timeouts": self.timeouts,
            "errors": self.errors,
        }


def count(redis_client: redis.Redis, counter: str) -> None:
    """Add one to a counter of :data:`app.keys.AI_STATS`."""
    redis_client.hincrby(keys.AI_STATS, counter, 1)


def cache_stats(redis_client: redis.Redis) -> CacheStats:
    """The counters, for the cache-hit-rate and fallback metrics."""
    raw = redis_client.hgetall(keys.AI_STATS) or {}
    return CacheStats(*(int(raw.get(name, 0)) for name in ("hits", "misses", "timeouts", "errors")))


class ReplyCache:
    """Replies by hash of (backend, normalised input, structured input, context fingerprint)."""

    def __init__(self, redis_client: redis.Redis, ttl: int = keys.AI_REPLY_TTL):
        self.redis = redis_client
        self.ttl = ttl

    @staticmethod
    def key(responder: Responder, inbound: Inbound) -> str:
        """The cache key of ``inbound`` for ``responder``."""
        preference = inbound.profile.preference if inbound.profile else None
        parts = [
            responder.name,
            inbound.type,
            normalise(inbound.text),
            inbound.structured.get("choice"),
            inbound.language,
            preference,
            inbound.context.fingerprint(),
            # A backend that sees who is asking may answer differently per customer.
            [inbound.phone_number_id, inbound.customer or inbound.wa_id, inbound.name] if responder.personal else None,
        ]
        blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return keys.AI_REPLY.format(digest=hashlib.sha256(blob.encode()).hexdigest())

    def get(self, key: str) -> str | None:
        """The cached reply, counting a hit or a miss."""
        raw = self.redis.get(key)
        metrics.record_cache_lookup(hit=raw is not None)
        if raw is None:
            count(self.redis, "misses")
            return None
        count(self.redis, "hits")
        return json.loads(raw)["reply"]

    def set(self, key: str, reply: str) -> None:
        """Keep ``reply`` for the cache's TTL."""
        value = json.dumps({"reply": reply, "at": time.time()}, ensure_ascii=False)
        self.redis.set(key, value, ex=self.ttl)
