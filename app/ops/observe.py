"""What the task code calls to be observed: one call per outcome, metrics and log ids together.

Kept apart from the tasks so that they stay thin, and from :mod:`app.ops.metrics` so that the
metric definitions stay a plain list.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from app.ops import metrics
from app.ops import window as w
from app.ops.logging import log_context
from app.whatsapp import errors
from app.whatsapp.webhook import WebhookFormatError, parse_webhook

log = logging.getLogger(__name__)


@dataclass
class WebhookObservation:
    """One inbound delivery being processed: set ``duplicates`` and ``replies`` when known."""

    messages: list[tuple[str, str, str]]  # (wamid, type, the sender's BSUID or phone)
    kind: str
    duplicates: list[str] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    customers: dict[str, str] = field(default_factory=dict)
    """The customer key of each message (from the contact book), by wamid."""


@contextmanager
def observe_webhook(payload: dict[str, Any]) -> Iterator[WebhookObservation]:
    """Bind the delivery's wamids to the logs, time it, and count its new messages by type.

    A message the worker had already handled (listed in ``duplicates``) is not counted again.
    """
    try:
        event = parse_webhook(payload)
        messages = [(m.id, m.type, m.from_user_id or m.from_) for m in event.messages]
    except WebhookFormatError:
        messages = []
    kind = messages[0][1] if messages else "status"
    observation = WebhookObservation(messages=messages, kind=kind)
    started = time.perf_counter()
    # The task's window figures and activity go to Redis together, when it ends.
    with metrics.batched(), log_context(wamid=",".join(m[0] for m in messages) or None):
        try:
            yield observation
        finally:
            metrics.observe_processing(kind, time.perf_counter() - started)
        for wamid, message_type, sender in messages:
            if wamid not in observation.duplicates:
                metrics.record_received(message_type)
                # One customer counts once, whichever id they wrote with.
                metrics.record_conversation_activity(observation.customers.get(wamid) or sender)
        if messages:
            log.info(
                "webhook processed: %d messages, replies %s",
                len(messages),
                observation.replies,
                extra={"reply_message_ids": observation.replies},
            )


def message_type(redis_client: Any, message_key: str) -> str | None:
    """The Cloud API type of a recorded outbound message (``text``, ``template``...), if known."""
    try:
        payload = redis_client.hget(message_key, "payload")
        return json.loads(payload).get("type") if payload else None
    except (RedisError, OSError, ValueError):
        return None


def sent_counter(redis_client: Any) -> Callable[[Any], None] | None:
    """What queues the alert window's count of one accepted send on a pipeline of
    ``redis_client``, when the window is kept there; None when it is not, and
    :func:`send_succeeded` adds it itself."""
    window = metrics.window_on(redis_client)
    if window is None:
        return None
    return lambda pipe: window.queue_add(pipe, {w.SENT: 1})


def send_succeeded(message_type: str | None, *, windowed: bool = False) -> None:
    """Meta accepted an outbound message of ``message_type`` (``text``, ``template``...);
    ``windowed`` if its :func:`sent_counter` ran."""
    metrics.record_sent(message_type, "sent", windowed=windowed)


def send_failed(store: Any, message_id: str, exc: errors.GraphAPIError, *, gave_up: bool) -> None:
    """A Graph call for ``message_id`` failed; ``gave_up`` when no retry follows."""
    metrics.record_graph_error(exc)
    if gave_up:
        metrics.record_sent(message_type(store.redis, store.key(message_id)), "failed")
        return
    metrics.record_retry(metrics.retry_reason(exc))
    if isinstance(exc, errors.ThrottledError):
        metrics.record_rate_limit_deferral()
