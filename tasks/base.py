"""The base task and the retry policy shared by the gateway's tasks."""

from __future__ import annotations

import logging
import os
import random
import time

from celery import Task
from celery.exceptions import Reject
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

import celeryconfig

log = logging.getLogger(__name__)

RETRY_BASE_DELAY = float(os.environ.get("SEND_RETRY_BASE_DELAY", 2.0))
"""Seconds of the first retry's backoff ceiling; each further attempt doubles it."""

RETRY_MAX_DELAY = min(
    float(os.environ.get("SEND_RETRY_MAX_DELAY", 300.0)), celeryconfig.MAX_DEFERRAL
)
"""The longest backoff, capped by the broker's visibility timeout so Redis never redelivers a
task that is only waiting for its retry."""

MAX_ATTEMPTS = int(os.environ.get("SEND_MAX_ATTEMPTS", 8))
"""Attempts at a transient failure before the message is given up."""


def backoff_delay(
    retries: int, *, base: float = RETRY_BASE_DELAY, cap: float = RETRY_MAX_DELAY
) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**retries)]."""
    return random.uniform(0, min(cap, base * (2**retries)))


def deferral(server_delay: float | None, retries: int) -> float:
    """How long to wait before the next try: the server's ``Retry-After`` if it gave one, else a
    backoff; never longer than the broker allows."""
    if server_delay is not None:
        return min(max(server_delay, 0.0), RETRY_MAX_DELAY)
    return backoff_delay(retries)


def turn_summary(turn: dict) -> str:
    """What Celery shows of a conversation task's argument (in logs and Flower): its ids only,
    never the customer's words or number."""
    ident = turn.get("id") or (turn.get("exchange") or {}).get("id")
    return f"<{turn.get('type') or 'turn'} {ident}>"


REDIS_FAILURE_PAUSE = 1.0
"""Seconds to wait before handing a message back after a Redis error, so a flapping Redis does
not turn the requeue into a busy loop."""


class GatewayTask(Task):
    """Base of every gateway task: a Redis failure hands the message back instead of losing it.

    The broker is the same Redis as the stores. When it fails mid-task, a retry would be
    published to the Redis that just failed, and Celery drops a message whose retry cannot be
    published (``Reject`` without requeue). Here the message is handed back instead: requeued at
    once if Redis answers again, or redelivered after the visibility timeout if it does not.
    Tasks are idempotent (claims and wamids are recorded), so the second run resumes the first.
    """

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except (RedisError, OperationalError) as exc:  # OperationalError: a publish to Redis
            raise self._hand_back(exc) from None

    def retry(self, *args, **kwargs):
        try:
            return super().retry(*args, **kwargs)
        except Reject as reject:
            if isinstance(reject.reason, (RedisError, OperationalError, OSError)):
                raise self._hand_back(reject.reason) from None
            raise

    def _hand_back(self, exc: Exception) -> Reject:
        log.warning(
            "%s: Redis failed (%s); handing the message back", self.name, type(exc).__name__
        )
        time.sleep(REDIS_FAILURE_PAUSE)
        return Reject(exc, requeue=True)
