"""Meta's 24-hour customer service window, per sending number and customer.

Within 24 hours of a customer's last message, a business may send them anything; after it, only
approved templates. The gateway keeps the time of each customer's last inbound message per sending
number (the key expires when the window closes), so the API can refuse a free-form message that
Meta would refuse with 131047, or send the configured fallback template instead.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from app import keys
from app.config import Settings, get_settings

WINDOW_SECONDS = keys.CUSTOMER_WINDOW_TTL
"""How long after a customer's last message free-form messages are allowed."""

TEMPLATE_TYPE = "template"
"""The one message type Meta delivers outside the window."""

# KEYS[1] the window key. ARGV: the inbound message's time, now, window length.
# Keeps the newest time only: webhooks arrive out of order, and an older message must not shorten
# the window a newer one opened.
_RECORD = """
local at = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if at <= current then return 0 end
local ttl = math.floor(at + tonumber(ARGV[3]) - tonumber(ARGV[2]))
if ttl <= 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
return 1
"""


def is_free_form(message: Mapping[str, Any]) -> bool:
    """Whether Meta only delivers ``message`` inside the customer service window."""
    return message.get("type", "text") != TEMPLATE_TYPE


class CustomerWindows:
    """The last inbound time of each customer, per sending number."""

    def __init__(self, redis_client: redis.Redis):
        self.redis = redis_client
        self._record = redis_client.register_script(_RECORD)

    @staticmethod
    def key(phone_number_id: str, wa_id: str) -> str:
        """The window key of a customer key (app.conversations.customers): BSUID or phone."""
        return keys.CUSTOMER_WINDOW.format(phone_number_id=phone_number_id, wa_id=wa_id)

    def record_inbound(self, phone_number_id: str, wa_id: str, at: float | None = None) -> bool:
        """Note that ``wa_id`` wrote to ``phone_number_id`` at ``at`` (default now).

        A time in the future (a skewed clock) counts as now. Returns whether the window moved.
        """
        now = time.time()
        at = min(at or now, now)
        return bool(
            self._record(keys=[self.key(phone_number_id, wa_id)], args=[at, now, WINDOW_SECONDS])
        )

    def queue_inbound(
        self, pipe: redis.client.Pipeline, phone_number_id: str, wa_id: str, at: float | None
    ) -> None:
        """:meth:`record_inbound`, added to ``pipe`` (run by the caller) as a plain ``EVAL``: a
        script registered on a pipeline costs a round trip of its own to check it is loaded."""
        now = time.time()
        at = min(at or now, now)
        pipe.eval(_RECORD, 1, self.key(phone_number_id, wa_id), at, now, WINDOW_SECONDS)

    def last_inbound(self, phone_number_id: str, wa_id: str) -> float | None:
        """When the customer last wrote, if within the window."""
        value = self.redis.get(self.key(phone_number_id, wa_id))
        return float(value) if value else None

    def is_open(self, phone_number_id: str, wa_id: str) -> bool:
        """Whether a free-form message to ``wa_id`` would be delivered now."""
        at = self.last_inbound(phone_number_id, wa_id)
        return at is not None and time.time() - at < WINDOW_SECONDS


@dataclass(frozen=True)
class FallbackTemplate:
    """The approved template sent instead of a free-form message when the window is closed."""

    name: str
    language: str = "en_US"

    @classmethod
    def parse(cls, spec: str) -> FallbackTemplate | None:
        """``"reengage"`` or ``"reengage:es"`` (name, then language code); None if empty."""
        spec = spec.strip()
        if not spec:
            return None
        name, _, language = spec.partition(":")
        if not name.strip():
            raise ValueError("WINDOW_FALLBACK_TEMPLATE must be <template name>[:<language code>]")
        return cls(name.strip(), language.strip() or "en_US")

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> FallbackTemplate | None:
        """The template named by ``WINDOW_FALLBACK_TEMPLATE``, if any."""
        return cls.parse((settings or get_settings()).window_fallback_template)

    def message_for(self, original: Mapping[str, Any]) -> dict[str, Any]:
        """The template message that replaces ``original``, to the same recipient (by ``to``,
        ``recipient`` or both, as ``original`` names them)."""
        address = {k: original[k] for k in ("to", "recipient") if k in original}
        return {
            "messaging_product": "whatsapp",
            "recipient_type": original.get("recipient_type", "individual"),
            **address,
            "type": TEMPLATE_TYPE,
            TEMPLATE_TYPE: {"name": self.name, "language": {"code": self.language}},
        }
