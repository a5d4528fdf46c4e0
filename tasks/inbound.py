"""The inbound task: one webhook delivery, as Meta sent it."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import shared_task
from celery.exceptions import Reject
from redis.exceptions import RedisError

from app.config import get_settings
from app.conversations.inbound import handle_webhook
from app.conversations.responder import GreetingResponder
from app.db import get_redis
from app.whatsapp.webhook import WebhookFormatError
from tasks.outbound import enqueue_send

log = logging.getLogger(__name__)

REDIS_FAILURE_PAUSE = 1.0
"""Seconds to wait before handing a delivery back after a Redis error, so a flapping Redis does
not turn the requeue into a busy loop."""


@shared_task(bind=True, name="inbound.process_webhook")
def process_webhook(self, payload: dict[str, Any]) -> dict[str, Any]:
    """Apply the statuses and answer the messages of one webhook delivery."""
    settings = get_settings()
    try:
        result = handle_webhook(
            payload,
            redis_client=get_redis(settings.redis_url),
            responder=GreetingResponder(),
            enqueue_send=enqueue_send,
            owner=self.request.id or "",
        )
    except WebhookFormatError as exc:
        log.warning("webhook dropped: %s", exc)
        return {"dropped": str(exc)}
    except RedisError as exc:
        # A retry would be published to the same Redis that just failed, and Celery drops a
        # message whose retry cannot be published. Hand the message back instead: requeued at
        # once if Redis answers again, or redelivered after the visibility timeout if it does not.
        # The claims are keyed by this task id, so the second run takes up where this one stopped.
        log.warning(
            "Redis failed during webhook processing (%s); handing it back", type(exc).__name__
        )
        time.sleep(REDIS_FAILURE_PAUSE)
        raise Reject(exc, requeue=True) from None
    return result.to_dict()
