"""The inbound task: one webhook delivery, as Meta sent it."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from app.config import get_settings
from app.conversations.inbound import handle_webhook
from app.conversations.responder import GreetingResponder
from app.db import get_redis
from app.ops.metrics import TimedResponder
from app.ops.observe import observe_webhook
from app.whatsapp.webhook import WebhookFormatError
from tasks.base import GatewayTask
from tasks.outbound import enqueue_send

log = logging.getLogger(__name__)


@shared_task(bind=True, base=GatewayTask, name="inbound.process_webhook")
def process_webhook(self, payload: dict[str, Any]) -> dict[str, Any]:
    """Apply the statuses and answer the messages of one webhook delivery.

    Claims are keyed by this task's id, so a redelivery of this same message (after a Redis
    failure or a lost worker) takes up where the first run stopped.
    """
    settings = get_settings()
    with observe_webhook(payload) as observed:
        try:
            result = handle_webhook(
                payload,
                redis_client=get_redis(settings.redis_url),
                responder=TimedResponder(GreetingResponder(), action="reply"),
                enqueue_send=enqueue_send,
                owner=self.request.id or "",
            )
        except WebhookFormatError as exc:
            log.warning("webhook dropped: %s", exc)
            return {"dropped": str(exc)}
        observed.duplicates, observed.replies = result.duplicates, result.replies
    return result.to_dict()
