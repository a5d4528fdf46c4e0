"""Human handoff: while a person handles a conversation, the gateway records but does not reply.

A handoff that starts is announced (:func:`announce`): a ``conversation.handoff`` event to the
business's systems and a notification through the alert channels, so that someone answers
(``POST /v1/conversations/<id>/messages``). The active ones are listed per sending number.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import redis

from app import keys
from app.events.delivery import emit
from app.events.subscriptions import CONVERSATION_HANDOFF

log = logging.getLogger(__name__)

BY_CUSTOMER = "customer"
"""The customer asked for a person."""
BY_OPERATOR = "operator"
"""An operator took the conversation through the API."""


@dataclass(frozen=True)
class Handoff:
    """A conversation handed to a person."""

    since: float
    by: str
    reason: str | None = None
    message_id: str | None = None
    """The customer's message that asked for a person, when it was the customer."""

    def to_dict(self) -> dict[str, Any]:
        return {"active": True, **asdict(self)}


class HandoffStore:
    """Which conversations a person handles, per sending number and customer."""

    def __init__(self, redis_client: redis.Redis):
        self.redis = redis_client

    @staticmethod
    def key(phone_number_id: str, wa_id: str) -> str:
        return keys.HANDOFF.format(phone_number_id=phone_number_id, wa_id=wa_id)

    def get(self, phone_number_id: str, wa_id: str) -> Handoff | None:
        """The active handoff, or None while the gateway answers by itself."""
        return self.decode(self.redis.get(self.key(phone_number_id, wa_id)))

    @staticmethod
    def decode(raw: str | None) -> Handoff | None:
        """The handoff its key holds (``raw``, read by the caller), or None."""
        return Handoff(**json.loads(raw)) if raw else None

    def start(
        self,
        phone_number_id: str,
        wa_id: str,
        *,
        by: str,
        reason: str | None = None,
        message_id: str | None = None,
    ) -> tuple[Handoff, bool]:
        """Hand the conversation to a person; the handoff and whether it is new (an active one is
        kept as it was)."""
        handoff = Handoff(since=time.time(), by=by, reason=reason, message_id=message_id)
        key = self.key(phone_number_id, wa_id)
        if self.redis.set(key, json.dumps(asdict(handoff)), nx=True, ex=keys.HANDOFF_TTL):
            active = keys.HANDOFFS_ACTIVE.format(phone_number_id=phone_number_id)
            self.redis.zadd(active, {wa_id: handoff.since})
            return handoff, True
        return self.get(phone_number_id, wa_id) or handoff, False

    def end(self, phone_number_id: str, wa_id: str) -> bool:
        """Give the conversation back to the responder; False if it was not handed off."""
        pipe = self.redis.pipeline()
        pipe.delete(self.key(phone_number_id, wa_id))
        pipe.zrem(keys.HANDOFFS_ACTIVE.format(phone_number_id=phone_number_id), wa_id)
        return bool(pipe.execute()[0])

    def active(
        self, phone_number_id: str, limit: int, offset: int = 0
    ) -> list[tuple[str, Handoff]]:
        """A page of the number's active handoffs, (customer key, handoff), oldest first.
        Entries whose handoff expired (``keys.HANDOFF_TTL``) are dropped from the index here."""
        index = keys.HANDOFFS_ACTIVE.format(phone_number_id=phone_number_id)
        found: list[tuple[str, Handoff]] = []
        while len(found) < limit:
            page = self.redis.zrange(index, offset, offset + limit - 1)
            if not page:
                break
            raws = self.redis.mget([self.key(phone_number_id, wa_id) for wa_id in page])
            expired = [wa_id for wa_id, raw in zip(page, raws, strict=True) if raw is None]
            if expired:
                self.redis.zrem(index, *expired)
            found += [
                (wa_id, Handoff(**json.loads(raw)))
                for wa_id, raw in zip(page, raws, strict=True)
                if raw is not None
            ]
            offset += len(page) - len(expired)
        return found[:limit]


Notify = Callable[[dict[str, Any]], None]
"""Sends a handoff notification (the event's data) through the alert channels."""


def announce(
    redis_client: redis.Redis,
    phone_number_id: str,
    wa_id: str,
    handoff: Handoff,
    notify: Notify,
) -> None:
    """Tell the business a conversation was handed to a person: the ``conversation.handoff``
    event and a notification (``notify``). A notification that cannot be queued is logged and
    lost: the handoff itself stands, and is listed by ``GET /v1/conversations?handoff=active``."""
    data = {"phone_number_id": phone_number_id, "customer": wa_id, **handoff.to_dict()}
    emit(
        redis_client,
        CONVERSATION_HANDOFF,
        data,
        conversation_id=wa_id,
        key=f"{phone_number_id}:{wa_id}:{handoff.since}",
    )
    try:
        notify(data)
    except Exception as exc:  # noqa: BLE001 - the handoff stands without its notification
        log.error("handoff notification not queued: %s", type(exc).__name__)
