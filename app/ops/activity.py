"""Who is in a conversation right now: customers who wrote within Meta's service window."""

from __future__ import annotations

import hashlib
import time

import redis

from app import keys
from app.config import get_settings

ACTIVE_CONVERSATION_WINDOW = get_settings().active_conversation_window
"""A conversation is active while the customer wrote within this many seconds: by default Meta's
24-hour customer service window, in which free-form replies may be sent."""


def customer_key(customer: str) -> str:
    """A stable stand-in for a customer key (a BSUID or phone number, from the contact book), so
    the activity set holds no personal ids."""
    return hashlib.sha256(customer.encode()).hexdigest()[:20]


class ActiveConversations:
    """Last activity per customer, as a sorted set scored by time."""

    def __init__(self, redis_client: redis.Redis, window: float = ACTIVE_CONVERSATION_WINDOW):
        self.redis = redis_client
        self.window = window

    def touch(self, customer: str, now: float | None = None) -> None:
        """The customer keyed ``customer`` just wrote."""
        pipe = self.redis.pipeline(transaction=False)
        self.queue_touch(pipe, customer, now)
        pipe.execute()

    def queue_touch(
        self, pipe: redis.client.Pipeline, customer: str, now: float | None = None
    ) -> None:
        """:meth:`touch`, its commands added to ``pipe`` (run by the caller)."""
        now = now or time.time()
        pipe.zadd(keys.OPS_ACTIVE_CONVERSATIONS, {customer_key(customer): now})
        pipe.zremrangebyscore(keys.OPS_ACTIVE_CONVERSATIONS, "-inf", now - self.window)
        pipe.expire(keys.OPS_ACTIVE_CONVERSATIONS, keys.OPS_ACTIVE_CONVERSATIONS_TTL)

    def count(self, now: float | None = None) -> int:
        """Customers who wrote within the window."""
        now = now or time.time()
        return int(self.redis.zcount(keys.OPS_ACTIVE_CONVERSATIONS, now - self.window, "+inf"))
