"""The deployment's state as Redis holds it, read in one place for gauges and alert checks."""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import redis

from app import keys
from app.config import get_settings
from app.ops import window as w
from app.ops.activity import ActiveConversations
from app.ops.heartbeats import WorkerHeartbeats
from app.ops.queues import (
    KOMBU_PRIORITY_STEPS,
    SEND_QUEUE_PREFIX,
    queue_depths,
    send_depths,
    unacked_count,
)

log = logging.getLogger(__name__)

DEAD_LETTER_STORE = "app.delivery.dead_letters:DeadLetterStore"
"""Where the dead-letter store lives; its size is ``len(DeadLetterStore(redis_client))``."""


def dead_letter_count(redis_client: redis.Redis) -> int | None:
    """Messages in the dead-letter store, or None where this deployment has no such store."""
    module_name, _, class_name = DEAD_LETTER_STORE.partition(":")
    try:
        store_class = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        return None
    return len(store_class(redis_client))


@dataclass
class DeploymentState:
    """Everything the gauges and alert checks need, read from Redis at one moment."""

    at: float
    queue_sizes: dict[str, int]
    """Messages waiting in each queue: a send lane's messages (batched or not), a task each
    elsewhere (one webhook or turn)."""
    unacked: int
    active_conversations: int
    dead_letters: int | None
    heartbeat_ages: dict[str, float | None]
    window: dict[str, float] = field(default_factory=dict)
    window_seconds: float = w.DEFAULT_WINDOW_SECONDS
    send_waiting: dict[tuple[str, str], int] = field(default_factory=dict)
    """Messages waiting to be sent, by (lane, sending number)."""
    dead_letters_growth: int | None = None
    """Set by the alert evaluator, which keeps the samples growth is measured against."""

    def total(self, name: str) -> float:
        """A window counter's total (0 when nobody recorded it)."""
        return self.window.get(name, 0.0)

    @property
    def send_attempts(self) -> float:
        return self.total(w.SENT) + self.total(w.SEND_ERRORS)

    @property
    def send_error_rate(self) -> float | None:
        """Failed Graph API calls over all send attempts in the window."""
        return w.ratio(self.total(w.SEND_ERRORS), self.send_attempts)

    @property
    def processing_average(self) -> float | None:
        return w.ratio(self.total(w.PROCESSING_SUM), self.total(w.PROCESSING_COUNT))

    @property
    def ai_response_average(self) -> float | None:
        return w.ratio(self.total(w.AI_SUM), self.total(w.AI_COUNT))

    @property
    def cache_hit_rate(self) -> float | None:
        hits = self.total(w.CACHE_HITS)
        return w.ratio(hits, hits + self.total(w.CACHE_MISSES))


def read_state(
    redis_client: redis.Redis,
    queues: Sequence[str],
    *,
    priority_steps: Sequence[int] = KOMBU_PRIORITY_STEPS,
    window_seconds: float = w.DEFAULT_WINDOW_SECONDS,
    now: float | None = None,
) -> DeploymentState:
    """Read the state; raises RedisError when Redis cannot be read."""
    now = now or time.time()
    try:
        dead_letters = dead_letter_count(redis_client)
    except Exception as exc:  # noqa: BLE001 - another subsystem's store must not break a scrape
        log.warning("dead-letter size unavailable: %s", type(exc).__name__)
        dead_letters = None
    sizes = queue_depths(redis_client, queues, priority_steps)
    send_waiting = send_depths(redis_client, get_settings().phone_number_id)
    for queue in sizes:
        if queue.startswith(SEND_QUEUE_PREFIX):
            lane = queue.removeprefix(SEND_QUEUE_PREFIX)
            sizes[queue] = sum(n for (of, _), n in send_waiting.items() if of == lane)
    return DeploymentState(
        at=now,
        queue_sizes=sizes,
        send_waiting=send_waiting,
        unacked=unacked_count(redis_client),
        active_conversations=ActiveConversations(redis_client).count(now),
        dead_letters=dead_letters,
        heartbeat_ages=WorkerHeartbeats(redis_client).queue_ages(queues, now),
        window=w.EventWindow(redis_client).totals(window_seconds, now),
        window_seconds=window_seconds,
    )


def firing_alerts(redis_client: redis.Redis, names: Sequence[str]) -> dict[str, bool]:
    """Which of the alerts ``names`` are firing now."""
    pipe = redis_client.pipeline(transaction=False)
    for name in names:
        pipe.exists(keys.OPS_ALERT_FIRING.format(name=name))
    return {name: bool(found) for name, found in zip(names, pipe.execute(), strict=True)}
