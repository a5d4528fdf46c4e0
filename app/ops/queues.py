"""The real depth of the broker's queues in Redis.

Kombu's Redis transport keeps one list per queue *and priority step*: a task published with a
priority lands in ``queue + SEPARATOR + step``. Exporters that read ``LLEN queue`` alone miss
every prioritised task; :func:`queue_depths` counts them all.

A send lane's depth is counted in messages, not tasks: a batch task carries up to 50, and a
message waiting for its retry or its rate-limit turn is on no list at all. :func:`send_depths`
reads the count the message store keeps per lane and sending number (``keys.SEND_WAITING``).

The inbound queue's depth counts webhooks, so it includes the status webhooks waiting in the
status lane (``keys.STATUS_LANE``), which share a task among many (``tasks.statuslane``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import redis

from app import keys

KOMBU_PRIORITY_SEPARATOR = "\x06\x16"
"""Kombu's ``Channel.sep`` for the Redis transport (a test checks it against kombu)."""

KOMBU_PRIORITY_STEPS: tuple[int, ...] = (0, 3, 6, 9)
"""Kombu's default ``priority_steps``; step 0 is the plain queue name."""

SEND_QUEUE_PREFIX = "send."
"""A send lane's queue is this and the lane's name (a test checks it against celeryconfig)."""

KOMBU_UNACKED_KEY = "unacked"
"""Kombu's hash of delivered but not yet acknowledged messages (``unacked_key``)."""


WAITING_BESIDE = {"inbound": keys.STATUS_LANE}
"""Lists of work waiting for a queue's tasks besides its own tasks, counted in its depth (a test
checks the queue's name against celeryconfig)."""


def priority_lists(queue: str, steps: Sequence[int] = KOMBU_PRIORITY_STEPS) -> list[str]:
    """Every Redis list that holds ``queue``'s tasks, one per priority step."""
    return [f"{queue}{KOMBU_PRIORITY_SEPARATOR}{step}" if step else queue for step in steps]


def queue_depths(
    redis_client: redis.Redis,
    queues: Iterable[str],
    steps: Sequence[int] = KOMBU_PRIORITY_STEPS,
) -> dict[str, int]:
    """Tasks waiting in each queue, priority sub-lists and the work waiting beside them
    (``WAITING_BESIDE``) included, read in one round trip."""
    queues = list(queues)
    pipe = redis_client.pipeline(transaction=False)
    for queue in queues:
        for name in priority_lists(queue, steps):
            pipe.llen(name)
        if queue in WAITING_BESIDE:
            pipe.llen(WAITING_BESIDE[queue])
    lengths = iter(pipe.execute())
    return {
        queue: sum(next(lengths) for _ in range(len(steps) + (queue in WAITING_BESIDE)))
        for queue in queues
    }


def unacked_count(redis_client: redis.Redis) -> int:
    """Tasks handed to a worker and not yet acknowledged (running, or lost with their worker)."""
    return int(redis_client.hlen(KOMBU_UNACKED_KEY))


def send_depths(redis_client: redis.Redis, default_number: str) -> dict[tuple[str, str], int]:
    """Messages waiting to be sent, by (lane, sending number); ``default_number`` names the
    configured number, which records may leave unnamed."""
    depths: dict[tuple[str, str], int] = {}
    for field, count in redis_client.hgetall(keys.SEND_WAITING).items():
        lane, _, number = (field.decode() if isinstance(field, bytes) else field).partition(":")
        key = (lane, number or default_number)
        depths[key] = depths.get(key, 0) + int(count)
    return depths
