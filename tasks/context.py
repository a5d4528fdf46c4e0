"""Context tasks (the ``context`` queue): every write to a conversation happens here."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from app.config import get_settings
from app.conversations.context import ConversationBusyError
from app.conversations.inbound import record_reply, record_turn
from app.db import get_redis
from tasks.base import InboundUnitTask
from tasks.enqueue import enqueue_answer_turn, enqueue_notify_handoff

RETRY_ON = (ConversationBusyError,)
"""An update that kept losing the optimistic race; Redis failures are GatewayTask's to handle."""


@shared_task(
    base=InboundUnitTask,
    name="context.record_turn",
    autoretry_for=RETRY_ON,
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=10,
)
def record_turn_task(turn: dict[str, Any]) -> bool:
    """Record one customer turn, then hand it on to be answered."""
    return record_turn(
        turn,
        redis_client=get_redis(get_settings().redis_url),
        enqueue_answer=enqueue_answer_turn,
        notify_handoff=enqueue_notify_handoff,
    )


@shared_task(
    base=InboundUnitTask,
    unit_kind="reply",
    name="context.record_reply",
    autoretry_for=RETRY_ON,
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=10,
)
def record_reply_task(reply: dict[str, Any]) -> bool:
    """Record the business's reply in the conversation."""
    return record_reply(reply, redis_client=get_redis(get_settings().redis_url))
