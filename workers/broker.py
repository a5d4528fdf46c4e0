"""The broker's Sentinel transport: kombu's, following the newest master the Sentinels name.

Celery's workers, beat and Flower reach Redis through kombu, which asks the Sentinels for the
master with redis-py's client; this transport has it ask as the gateway's own clients do
(:class:`app.db.NewestSentinel`), so that a worker's consumer and its pool processes can never
find two different masters after a failover. ``celeryconfig`` selects it for a ``sentinel://``
broker URL.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis

from app.db import NewestSentinel


class SentinelChannel(kombu_redis.SentinelChannel):
    def _sentinel_managed_pool(self, asynchronous: bool = False) -> Any:
        pool = super()._sentinel_managed_pool(asynchronous)
        # kombu builds redis-py's Sentinel client, which the pool, its connections' proxy and
        # the channel all hold: it is made ours in place, with its Sentinels and settings.
        pool.sentinel_manager.__class__ = NewestSentinel
        return pool


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel
