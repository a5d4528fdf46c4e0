"""Marketing opt-out, per sending number and customer (the contact book's customer key).

A customer opts out by writing one of the opt-out keywords as their whole message (accents, case
and surrounding punctuation ignored: "Baja", "¡BAJA!", "cancelár"), or through WhatsApp itself
(Meta's ``user_preferences`` webhook, ``marketing_messages`` ``stop``; ``resume`` opts back in),
or through the API. A marketing template to an opted-out customer is refused (``opted_out``).
"""

from __future__ import annotations

import json
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis

from app import keys
from app.config import Settings
from app.conversations.customers import CustomerBook, Identity
from app.whatsapp.webhook import UserPreference

KEYWORD = "keyword"
PREFERENCES = "user_preferences"
API = "api"
SOURCES = (KEYWORD, PREFERENCES, API)
"""How a customer opted out: by writing a keyword, through WhatsApp, or by the business's API."""

MARKETING_PREFERENCE = "marketing_messages"
"""The ``user_preferences`` category that opts out of (``stop``) or back into (``resume``)
marketing messages."""


def normalise(text: str) -> str:
    """``text`` without accents, case or surrounding punctuation and spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return plain.casefold().strip(" \t\r\n.,;:!?¡¿\"'()-")


def is_opt_out_keyword(text: str | None, keywords: Iterable[str]) -> bool:
    """Whether the whole message ``text`` is one of ``keywords``."""
    if not text:
        return False
    return normalise(text) in {normalise(k) for k in keywords}


@dataclass(frozen=True)
class OptOutPolicy:
    """What opts a customer out by message, and the one reply that confirms it."""

    keywords: tuple[str, ...]
    confirmation: str

    @classmethod
    def from_settings(cls, settings: Settings) -> OptOutPolicy:
        keywords = tuple(k.strip() for k in settings.opt_out_keywords.split(",") if k.strip())
        return cls(keywords, settings.opt_out_confirmation)

    def is_opt_out(self, text: str | None) -> bool:
        return is_opt_out_keyword(text, self.keywords)


@dataclass(frozen=True)
class OptOut:
    """A customer's opt-out: when, how (one of :data:`SOURCES`) and, for a keyword, the id of
    the message that carried it."""

    since: float
    source: str
    message_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"since": self.since, "source": self.source, "message_id": self.message_id}


class OptOutBook:
    """Who opted out of marketing from which sending number."""

    def __init__(self, redis_client: redis.Redis):
        self.redis = redis_client

    @staticmethod
    def key(phone_number_id: str, customer: str) -> str:
        return keys.OPT_OUT.format(phone_number_id=phone_number_id, customer=customer)

    def get(self, phone_number_id: str, customer: str) -> OptOut | None:
        raw = self.redis.get(self.key(phone_number_id, customer))
        return OptOut(**json.loads(raw)) if raw else None

    def is_opted_out(self, phone_number_id: str, customer: str) -> bool:
        return bool(self.redis.exists(self.key(phone_number_id, customer)))

    def opt_out(
        self,
        phone_number_id: str,
        customer: str,
        source: str,
        at: float | None = None,
        message_id: str | None = None,
    ) -> bool:
        """Record the opt-out; True only if the customer was not opted out already, so that one
        confirmation is sent however often they repeat it."""
        record = OptOut(at if at is not None else time.time(), source, message_id)
        return bool(
            self.redis.set(
                self.key(phone_number_id, customer), json.dumps(record.to_dict()), nx=True
            )
        )

    def opt_in(self, phone_number_id: str, customer: str) -> bool:
        """Forget the opt-out; True if there was one."""
        return bool(self.redis.delete(self.key(phone_number_id, customer)))


def apply_preference(book: OptOutBook, customers: CustomerBook, preference: UserPreference) -> bool:
    """Apply a ``user_preferences`` webhook item: ``marketing_messages`` ``stop`` opts out,
    ``resume`` opts back in; other categories change nothing. True if it changed something."""
    if preference.category != MARKETING_PREFERENCE:
        return False
    customer = customers.learn(
        preference.phone_number_id,
        Identity(preference.wa_id, preference.user_id, preference.parent_user_id),
    )
    if customer is None:
        return False
    if preference.value == "stop":
        return book.opt_out(
            preference.phone_number_id, customer, PREFERENCES, preference.timestamp or None
        )
    if preference.value == "resume":
        return book.opt_in(preference.phone_number_id, customer)
    return False
