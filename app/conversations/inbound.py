"""Handling one webhook delivery: statuses update records, messages get at most one reply."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from app import keys
from app.conversations.responder import Inbound, Responder
from app.delivery.dead_letters import DeadLetterStore, dead_letter_failed_status
from app.delivery.messages import DELIVERED, FAILED, READ, SENT, MessageStore
from app.delivery.window import CustomerWindows
from app.whatsapp.webhook import Message, Status, parse_webhook

log = logging.getLogger(__name__)

REPLY_NAMESPACE = uuid.UUID("5f0c6c1e-5b1a-4e0a-9a59-0f2b8a1d7c11")
"""Namespace of reply ids: the reply to a given inbound message always has the same id, so a
message processed twice still produces one reply."""

WEBHOOK_STATUSES = {"sent": SENT, "delivered": DELIVERED, "read": READ, "failed": FAILED}

EnqueueSend = Callable[[str, str], None]
"""Puts a send task for (message_id, priority lane) on the broker."""


@dataclass
class InboundResult:
    """What one webhook delivery led to, for logs and tests."""

    replies: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    statuses_applied: int = 0
    statuses_ignored: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "replies": self.replies,
            "duplicates": self.duplicates,
            "statuses_applied": self.statuses_applied,
            "statuses_ignored": self.statuses_ignored,
        }


def reply_id(inbound_wamid: str) -> str:
    """The gateway message id of the reply to ``inbound_wamid``."""
    return uuid.uuid5(REPLY_NAMESPACE, inbound_wamid).hex


def handle_webhook(
    payload: dict[str, Any],
    *,
    redis_client: redis.Redis,
    responder: Responder,
    enqueue_send: EnqueueSend,
) -> InboundResult:
    """Apply every status and answer every new message of one webhook delivery."""
    event = parse_webhook(payload)
    store = MessageStore(redis_client)
    result = InboundResult()
    for status in event.statuses:
        if apply_status(store, status):
            result.statuses_applied += 1
        else:
            result.statuses_ignored += 1
    windows = CustomerWindows(redis_client)
    for message in event.messages:
        # Every message from the customer reopens their 24-hour window with this number.
        windows.record_inbound(message.metadata.phone_number_id, message.from_, message.timestamp)
        if not claim(redis_client, message.id):
            result.duplicates.append(message.id)
            continue
        try:
            reply = answer(message, store=store, responder=responder, enqueue_send=enqueue_send)
        except Exception:
            release(redis_client, message.id)  # let the task's retry process it again
            raise
        finish(redis_client, message.id)
        if reply:
            result.replies.append(reply)
    return result


def answer(
    message: Message, *, store: MessageStore, responder: Responder, enqueue_send: EnqueueSend
) -> str | None:
    """Ask the responder about ``message`` and queue its reply on the high lane; the reply id."""
    log.info("inbound %s message %s", message.type, message.id)
    text = message.text
    if text is None:
        return None
    body = responder.reply(Inbound(wa_id=message.from_, text=text, name=message.contact_name))
    if not body:
        return None
    message_id = reply_id(message.id)
    payload = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.from_,
        "type": "text",
        "text": {"body": body},
        "context": {"message_id": message.id},
    }
    # Created once; a second pass (after a crash) finds it and enqueues again: the send is idempotent.
    store.create(message_id, payload, priority="high")
    enqueue_send(message_id, "high")
    return message_id


def apply_status(store: MessageStore, status: Status) -> bool:
    """Record a status webhook on the message it concerns; False if unknown or out of date."""
    target = WEBHOOK_STATUSES.get(status.status)
    message_id = store.id_for_wamid(status.id)
    if target is None or message_id is None:
        log.info("status %s for unknown message %s ignored", status.status, status.id)
        return False
    if target == FAILED:
        # Meta gave up after accepting it: keep Meta's error and dead-letter it for replay.
        dead_letters = DeadLetterStore(store.redis)
        return dead_letter_failed_status(store, dead_letters, message_id, status.errors)
    return store.advance(message_id, target)


def claim(redis_client: redis.Redis, wamid: str) -> bool:
    """Take ``wamid`` for processing; False if it is being or has been processed."""
    key = keys.INBOUND_MESSAGE.format(wamid=wamid)
    return bool(redis_client.set(key, "processing", nx=True, ex=keys.INBOUND_PROCESSING_TTL))


def finish(redis_client: redis.Redis, wamid: str) -> None:
    """Mark ``wamid`` done for as long as Meta may redeliver it."""
    redis_client.set(keys.INBOUND_MESSAGE.format(wamid=wamid), "done", ex=keys.INBOUND_DONE_TTL)


def release(redis_client: redis.Redis, wamid: str) -> None:
    """Give up a claim after a failure, so a retry can process the message."""
    redis_client.delete(keys.INBOUND_MESSAGE.format(wamid=wamid))
