"""Sliding windows of counters kept in Redis, so that every process on every host feeds the
same figures and any process can read them back: alert checks and scrape-time gauges."""

from __future__ import annotations

import logging
import time

import redis
from redis.exceptions import RedisError

from app import keys
from app.config import get_settings

log = logging.getLogger(__name__)

BUCKET_SECONDS = keys.OPS_BUCKET_SECONDS
"""Width of one bucket: the resolution of every window (a window is a whole number of buckets)."""

DEFAULT_WINDOW_SECONDS = get_settings().alert_window_seconds
"""The window alert checks and rate gauges look back over (``ALERT_WINDOW_SECONDS``, capped in
the settings so its buckets still exist)."""

# Field names of a bucket: what each process adds to.
SENT = "sent"
SEND_ERRORS = "send_errors"
PROCESSING_SUM = "processing_sum"
PROCESSING_COUNT = "processing_count"
AI_SUM = "ai_sum"
AI_COUNT = "ai_count"
SIGNATURE_FAILURES = "signature_failures"
CACHE_HITS = "cache_hits"
CACHE_MISSES = "cache_misses"


class EventWindow:
    """Counters in time buckets of :data:`BUCKET_SECONDS`; read as totals over the last N seconds."""

    def __init__(self, redis_client: redis.Redis, bucket_seconds: int = BUCKET_SECONDS):
        self.redis = redis_client
        self.bucket_seconds = bucket_seconds

    def _key(self, bucket: int) -> str:
        return keys.OPS_WINDOW_BUCKET.format(bucket=bucket)

    def add(self, amounts: dict[str, float], now: float | None = None) -> None:
        """Add ``amounts`` to the current bucket. Never raises: metrics must not fail the work."""
        try:
            pipe = self.redis.pipeline(transaction=False)
            self.queue_add(pipe, amounts, now)
            pipe.execute()
        except (RedisError, OSError) as exc:
            log.debug("window not updated: %s", type(exc).__name__)

    def queue_add(
        self, pipe: redis.client.Pipeline, amounts: dict[str, float], now: float | None = None
    ) -> None:
        """:meth:`add`, its commands added to ``pipe``, a pipeline of this window's Redis that runs
        anyway, so that counting costs no round trip of its own (run, and its errors caught, by the
        caller)."""
        bucket = int((time.time() if now is None else now) // self.bucket_seconds)
        key = self._key(bucket)
        for name, amount in amounts.items():
            pipe.hincrbyfloat(key, name, amount)
        pipe.expire(key, keys.OPS_WINDOW_TTL)

    def totals(self, seconds: float, now: float | None = None) -> dict[str, float]:
        """Sum of every field over the buckets that cover the last ``seconds``: at least that long,
        at most one bucket more (the oldest bucket is counted whole)."""
        now = time.time() if now is None else now
        last = int(now // self.bucket_seconds)
        first = int((now - seconds) // self.bucket_seconds)
        pipe = self.redis.pipeline(transaction=False)
        for bucket in range(first, last + 1):
            pipe.hgetall(self._key(bucket))
        totals: dict[str, float] = {}
        for fields in pipe.execute():
            for name, value in fields.items():
                name = name.decode() if isinstance(name, bytes) else name
                totals[name] = totals.get(name, 0.0) + float(value)
        return totals


def ratio(part: float, whole: float) -> float | None:
    """``part / whole``, or None when there is nothing to divide."""
    return part / whole if whole > 0 else None
