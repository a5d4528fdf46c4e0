"""Inbound tasks: one webhook delivery as Meta sent it, and answering one customer turn."""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import shared_task
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from app.config import get_settings
from app.conversations.config import get_conversation_settings
from app.conversations.inbound import answer_turn, handle_webhook
from app.conversations.media import MediaFetcher
from app.conversations.responder import ReplyService, build_responder
from app.db import get_redis
from app.whatsapp.client import client_for
from app.whatsapp.webhook import WebhookFormatError
from tasks.context import enqueue_reply, enqueue_turn
from tasks.outbound import enqueue_send

log = logging.getLogger(__name__)

RETRY_ON = (RedisError, OperationalError)
"""Passing failures: Redis away, or a stale broker connection when handing work on."""

_services: dict[int, ReplyService] = {}


def reply_service() -> ReplyService:
    """This process's responder service, built on first use (after the worker forked)."""
    service = _services.get(os.getpid())
    if service is None:
        settings = get_conversation_settings()
        service = _services[os.getpid()] = ReplyService(
            build_responder(settings),
            redis_client=get_redis(get_settings().redis_url),
            timeout=settings.timeout,
            fallback_reply=settings.fallback_reply,
            cache_ttl=settings.cache_ttl,
        )
    return service


def enqueue_answer(turn: dict[str, Any]) -> None:
    """Put the task that answers a recorded turn on the inbound queue."""
    answer_turn_task.apply_async(args=[turn])


@shared_task(
    name="inbound.process_webhook",
    autoretry_for=RETRY_ON,
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=10,
)
def process_webhook(payload: dict[str, Any]) -> dict[str, Any]:
    """Apply the statuses and pass on the messages of one webhook delivery."""
    settings = get_settings()
    client = client_for(settings)
    conversation_settings = get_conversation_settings()
    fetch_media = None
    if hasattr(client, "download_media"):  # the Graph client's media download, once it has one
        fetch_media = MediaFetcher(
            client, conversation_settings.media_dir, conversation_settings.media_max_bytes
        )
    try:
        result = handle_webhook(
            payload,
            redis_client=get_redis(settings.redis_url),
            enqueue_turn=enqueue_turn,
            mark_read=lambda message_id, typing: client.mark_read(
                message_id, typing_indicator=typing
            ),
            fetch_media=fetch_media,
        )
    except WebhookFormatError as exc:
        log.warning("webhook dropped: %s", exc)
        return {"dropped": str(exc)}
    return result.to_dict()


@shared_task(
    name="inbound.answer_turn",
    autoretry_for=RETRY_ON,
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=10,
)
def answer_turn_task(turn: dict[str, Any]) -> str | None:
    """Answer one recorded customer turn; the reply's message id, if any."""
    return answer_turn(
        turn,
        redis_client=get_redis(get_settings().redis_url),
        service=reply_service(),
        enqueue_send=enqueue_send,
        enqueue_reply=enqueue_reply,
        context_messages=get_conversation_settings().context_messages,
    )
