"""Human handoff: while a person handles a conversation, the gateway records but does not reply."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import redis

from app import keys

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
        raw = self.redis.get(self.key(phone_number_id, wa_id))
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
            return handoff, True
        return self.get(phone_number_id, wa_id) or handoff, False

    def end(self, phone_number_id: str, wa_id: str) -> bool:
        """Give the conversation back to the responder; False if it was not handed off."""
        return bool(self.redis.delete(self.key(phone_number_id, wa_id)))
