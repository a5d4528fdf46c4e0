"""A record of broker messages the workers refused to run: what came, from which queue, why."""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from app import keys


class RejectedMessageLog:
    """The newest refused broker messages, kept in a capped Redis list (JSON entries)."""

    def __init__(self, redis_client: redis.Redis):
        self.redis = redis_client

    def record(
        self, *, reason: str, content_type: str | None, task: str | None, queue: str | None
    ) -> None:
        """Keep one refusal. The body itself is never stored: it is untrusted and may be huge."""
        entry = {
            "at": time.time(),
            "reason": reason,
            "content_type": content_type,
            "task": task,
            "queue": queue,
        }
        pipe = self.redis.pipeline()
        pipe.lpush(keys.REJECTED_MESSAGES, json.dumps(entry))
        pipe.ltrim(keys.REJECTED_MESSAGES, 0, keys.REJECTED_MESSAGES_KEPT - 1)
        pipe.execute()

    def entries(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest refusals first."""
        return [json.loads(e) for e in self.redis.lrange(keys.REJECTED_MESSAGES, 0, limit - 1)]

    def __len__(self) -> int:
        return self.redis.llen(keys.REJECTED_MESSAGES)
