"""The worker's message consumer: Celery's, plus a durable record of every message it refuses.

Celery already refuses content types outside ``accept_content`` (pickle included) without
deserialising them, and discards unknown or malformed task messages; this keeps a record of each
in Redis so operators can see that someone wrote to the broker who should not have.
"""

from __future__ import annotations

import logging

from celery.worker.consumer import Consumer
from redis.exceptions import RedisError

from app.config import get_settings
from app.db import get_redis
from app.rejected import RejectedMessageLog

log = logging.getLogger(__name__)


class GatewayConsumer(Consumer):
    """Records refused messages, then lets Celery discard them as it always does."""

    def on_decode_error(self, message, exc):
        _record(message, f"undecodable: {type(exc).__name__}")
        return super().on_decode_error(message, exc)

    def on_invalid_task(self, body, message, exc):
        _record(message, f"invalid: {type(exc).__name__}")
        return super().on_invalid_task(body, message, exc)

    def on_unknown_task(self, body, message, exc):
        _record(message, "unknown task")
        return super().on_unknown_task(body, message, exc)

    def on_unknown_message(self, body, message):
        _record(message, "not a task message")
        return super().on_unknown_message(body, message)


def _record(message, reason: str) -> None:
    headers = message.headers if isinstance(getattr(message, "headers", None), dict) else {}
    delivery = (
        message.delivery_info if isinstance(getattr(message, "delivery_info", None), dict) else {}
    )
    task = headers.get("task")
    try:
        RejectedMessageLog(get_redis(get_settings().redis_url)).record(
            reason=reason,
            content_type=getattr(message, "content_type", None),
            task=str(task)[:200] if task is not None else None,
            queue=delivery.get("routing_key"),
        )
    except RedisError:
        log.exception("could not record a refused broker message")
