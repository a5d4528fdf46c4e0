"""Worker heartbeats in Redis: each worker says which queues it consumes, every few seconds."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable

import redis

from app import keys
from app.config import get_settings

HEARTBEAT_INTERVAL = get_settings().worker_heartbeat_interval
"""Seconds between a worker's heartbeats (``WORKER_HEARTBEAT_INTERVAL``)."""


class WorkerHeartbeats:
    """The last heartbeat of every worker, by hostname."""

    def __init__(self, redis_client: redis.Redis):
        self.redis = redis_client

    def beat(self, hostname: str, queues: Iterable[str], now: float | None = None) -> None:
        """Record that ``hostname`` is alive and consuming ``queues``."""
        entry = {"queues": sorted(queues), "pid": os.getpid(), "at": now or time.time()}
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(keys.OPS_WORKER_HEARTBEATS, hostname, json.dumps(entry))
        pipe.expire(keys.OPS_WORKER_HEARTBEATS, keys.OPS_WORKER_HEARTBEATS_TTL)
        pipe.execute()

    def forget(self, hostname: str) -> None:
        """Remove a worker that shut down cleanly, so it is not mistaken for a dead one."""
        self.redis.hdel(keys.OPS_WORKER_HEARTBEATS, hostname)

    def workers(self) -> dict[str, dict]:
        """Every known worker's last heartbeat."""
        raw = self.redis.hgetall(keys.OPS_WORKER_HEARTBEATS)
        found = {}
        for host, value in raw.items():
            try:
                found[host if isinstance(host, str) else host.decode()] = json.loads(value)
            except ValueError:
                continue
        return found

    def queue_ages(
        self, queues: Iterable[str], now: float | None = None
    ) -> dict[str, float | None]:
        """Seconds since any worker consuming each queue last beat; None if none ever did."""
        now = now or time.time()
        ages: dict[str, float | None] = {queue: None for queue in queues}
        for entry in self.workers().values():
            age = max(0.0, now - float(entry.get("at", 0)))
            for queue in entry.get("queues", []):
                if queue in ages and (ages[queue] is None or age < ages[queue]):
                    ages[queue] = age
        return ages
