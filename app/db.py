"""The process's Redis connection pool."""

from __future__ import annotations

from functools import lru_cache

import redis

SOCKET_TIMEOUT = 2.0
"""Seconds before a Redis call fails; short, so a Redis outage turns into a quick 503."""


@lru_cache(maxsize=8)
def get_redis(url: str) -> redis.Redis:
    """A client for ``url`` whose pool is shared by every caller in this process."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
        health_check_interval=30,
    )
