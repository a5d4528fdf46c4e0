"""Send tasks: one message id per task, on the lane its priority names."""

from __future__ import annotations

import logging

from celery import shared_task

import celeryconfig
from app.config import get_settings
from app.db import get_redis
from app.delivery.messages import FAILED, MessageStore
from app.delivery.sender import SendOutcome, send_recorded_message
from app.ops import observe
from app.whatsapp.client import client_for
from app.whatsapp.errors import GraphAPIError, ThrottledError, TransientError
from tasks.base import MAX_ATTEMPTS, GatewayTask, deferral

log = logging.getLogger(__name__)


def enqueue_send(message_id: str, priority: str) -> None:
    """Put the send task for ``message_id`` on the ``priority`` lane."""
    send_message.apply_async(args=[message_id], queue=celeryconfig.SEND_QUEUES[priority])


@shared_task(bind=True, base=GatewayTask, name="outbound.send_message", max_retries=None)
def send_message(self, message_id: str) -> str:
    """Send one recorded message; retry passing failures, record the rest on the message."""
    settings = get_settings()
    store = MessageStore(get_redis(settings.redis_url))
    try:
        outcome = send_recorded_message(store, client_for(settings), message_id)
        if outcome is SendOutcome.SENT:
            observe.send_succeeded(store, message_id)
        return outcome.value
    except (ThrottledError, TransientError) as exc:
        gave_up = self.request.retries + 1 >= MAX_ATTEMPTS
        observe.send_failed(store, message_id, exc, gave_up=gave_up)
        if gave_up:
            log.warning("message %s failed after %d attempts: %s", message_id, MAX_ATTEMPTS, exc)
            store.advance(message_id, FAILED, error=exc.to_dict())
            return "failed"
        countdown = deferral(exc.retry_after, self.request.retries)
        log.info("message %s: %s; retrying in %.1fs", message_id, exc, countdown)
        raise self.retry(countdown=countdown) from None
    except GraphAPIError as exc:
        observe.send_failed(store, message_id, exc, gave_up=True)
        log.warning("message %s refused by Meta: %s", message_id, exc)
        store.advance(message_id, FAILED, error=exc.to_dict())
        return "failed"
