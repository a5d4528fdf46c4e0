"""The worker's message consumer: Celery's, reconnecting faster, and recording what it refuses.

Celery already refuses content types outside ``accept_content`` (pickle included) without
deserialising them, and discards unknown or malformed task messages; this keeps a record of each
in Redis so operators can see that someone wrote to the broker who should not have.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery.worker.consumer import Consumer
from redis.exceptions import RedisError

from app.config import get_settings
from app.db import get_redis
from app.rejected import RejectedMessageLog

log = logging.getLogger(__name__)


RECONNECT_INTERVAL_START = 0.5
"""Seconds before the first reconnection attempt after the broker is lost."""
RECONNECT_INTERVAL_STEP = 0.5
"""Added to the wait after each failed attempt."""
RECONNECT_INTERVAL_MAX = 2.0
"""Longest wait between attempts: kombu's default (30 s, reached by steps of 2 s) left workers
idle for 20 s and more after a 10 s Redis restart."""


def despite_lost_client(settle: Callable[..., Any]) -> Callable[..., Any]:
    """A message's ``ack_log_error`` or ``reject_log_error`` that gives up instead of raising
    when its broker connection is gone for good.

    A task that ended while Redis was away is acknowledged (or requeued) once the worker has
    reconnected, through the channel of the lost connection, whose client kombu has released by
    then: kombu raises AttributeError, not a connection error, and that killed the worker. The
    message is still in Redis's unacked set, and comes back after the visibility timeout.
    """

    def settle_or_leave(*args: Any, **kwargs: Any) -> Any:
        try:
            return settle(*args, **kwargs)
        except AttributeError:
            channel = getattr(getattr(settle, "__self__", None), "channel", None)
            transport = getattr(channel, "connection", None)
            if channel is None or (transport is not None and transport.client is not None):
                raise  # not the released connection: a defect to see
            log.warning(
                "task message left unacknowledged: its broker connection is gone; "
                "Redis hands it out again after the visibility timeout"
            )
            return None

    return settle_or_leave


class GatewayConsumer(Consumer):
    """Celery's consumer, reconnecting within seconds and recording the messages it refuses."""

    def call_soon_ack(self, p, *args, **kwargs):
        return super().call_soon_ack(despite_lost_client(p), *args, **kwargs)

    def ensure_connected(self, conn):
        connect = conn.ensure_connection

        def ensure_connection(*args, **kwargs):
            kwargs.setdefault("interval_start", RECONNECT_INTERVAL_START)
            kwargs.setdefault("interval_step", RECONNECT_INTERVAL_STEP)
            kwargs.setdefault("interval_max", RECONNECT_INTERVAL_MAX)
            return connect(*args, **kwargs)

        conn.ensure_connection = ensure_connection
        return super().ensure_connected(conn)

    def on_connection_error_after_connected(self, exc):
        # Closing the lost connection makes kombu restore unacknowledged messages through a
        # client it can no longer build (AttributeError on the released connection), which Celery
        # does not expect and which kills the worker. The messages stay in Redis's unacked set
        # and come back after the visibility timeout, so the worker carries on instead.
        connection = self.connection
        if connection is not None:
            close = connection.close

            def close_despite_lost_client():
                try:
                    close()
                except AttributeError:
                    log.warning("broker connection closed without restoring unacked messages")

            connection.close = close_despite_lost_client
        return super().on_connection_error_after_connected(exc)

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
