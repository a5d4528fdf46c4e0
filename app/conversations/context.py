"""The conversation's memory in Redis: exchanges, a historical summary, and the customer profile.

One JSON document per sending number and customer (never pickle), renewed for a day on every
write. Updates are optimistic over the conversation and the profile (written only if neither
changed since it was read, compared in one script), so two messages from the same
customer recorded at once by two workers both land: the loser of a race re-reads and applies its
change again.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from app import keys
from app.conversations.profile import Profile
from app.conversations.text import terms
from app.errors import ConversationError

log = logging.getLogger(__name__)

MAX_EXCHANGES = 50
"""Past this many exchanges the oldest are folded into the historical summary."""

KEPT_AFTER_FOLD = 30
"""Exchanges kept verbatim after a fold; the rest live on only in the summary."""

MAX_TRANSACTION_ATTEMPTS = 50
"""Optimistic-update retries before giving up; contention is one customer's own messages, so a
handful of retries is the worst case seen, and the task's retry covers the rest."""

SUMMARY_TOPICS = 8
"""Topic terms a summary names."""

SUMMARY_HIGHLIGHTS = 5
"""Important customer messages a summary quotes."""

HIGHLIGHT_CHARS = 140
"""A quoted message is cut to this length."""

CUSTOMER = "customer"
BUSINESS = "business"


class ConversationBusyError(ConversationError):
    """An update lost the optimistic race :data:`MAX_TRANSACTION_ATTEMPTS` times; retry later."""


@dataclass
class Exchange:
    """One message of the conversation, from the customer or from the business."""

    id: str
    role: str
    type: str
    text: str
    """What was said; for media, locations, reactions and the like, a description of it."""
    at: float
    entities: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    """Structured input and metadata: a button's id, a location, a media file, a reaction."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Exchange:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Summary:
    """What the folded exchanges were about: counts, topics, entities and notable messages."""

    exchanges: int = 0
    since: float | None = None
    until: float | None = None
    topics: dict[str, int] = field(default_factory=dict)
    entities: dict[str, int] = field(default_factory=dict)
    highlights: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.text()}

    def absorb(self, exchanges: list[Exchange]) -> Summary:
        """A summary of these exchanges as well as everything this one already covered."""
        topics = Counter(self.topics)
        found = Counter(self.entities)
        highlights = list(self.highlights)
        for exchange in exchanges:
            found.update(exchange.entities)
            if exchange.role != CUSTOMER:
                continue
            topics.update(terms(exchange.text))
            if exchange.entities:
                highlights.append(exchange.text[:HIGHLIGHT_CHARS])
        times = [e.at for e in exchanges]
        return Summary(
            exchanges=self.exchanges + len(exchanges),
            since=min([t for t in (self.since, *times) if t is not None], default=None),
            until=max([t for t in (self.until, *times) if t is not None], default=None),
            topics=dict(topics.most_common(SUMMARY_TOPICS * 2)),
            entities=dict(found),
            highlights=highlights[-SUMMARY_HIGHLIGHTS:],
        )

    def text(self) -> str:
        """The summary as one paragraph for a responder."""
        if not self.exchanges:
            return ""
        parts = [f"{self.exchanges} earlier messages"]
        if self.since and self.until:
            parts[0] += f" ({_day(self.since)} to {_day(self.until)})"
        top = [t for t, _ in sorted(self.topics.items(), key=lambda kv: -kv[1])][:SUMMARY_TOPICS]
        if top:
            parts.append("topics: " + ", ".join(top))
        if self.entities:
            parts.append(
                "mentioned: " + ", ".join(f"{k} x{n}" for k, n in sorted(self.entities.items()))
            )
        if self.highlights:
            parts.append("notable: " + " | ".join(f'"{h}"' for h in self.highlights))
        return "; ".join(parts) + "."


@dataclass
class Conversation:
    """A customer's conversation with one sending number."""

    phone_number_id: str
    wa_id: str
    exchanges: list[Exchange] = field(default_factory=list)
    summary: Summary = field(default_factory=Summary)
    last_inbound_at: float | None = None
    updated_at: float | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Conversation:
        return cls(
            phone_number_id=data["phone_number_id"],
            wa_id=data["wa_id"],
            exchanges=[Exchange.from_dict(e) for e in data.get("exchanges", [])],
            summary=Summary.from_dict(data.get("summary") or {}),
            last_inbound_at=data.get("last_inbound_at"),
            updated_at=data.get("updated_at"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "phone_number_id": self.phone_number_id,
            "wa_id": self.wa_id,
            "exchanges": [e.to_dict() for e in self.exchanges],
            "summary": self.summary.to_dict(),
            "last_inbound_at": self.last_inbound_at,
            "updated_at": self.updated_at,
        }

    def has(self, exchange_id: str) -> bool:
        """Whether an exchange with this id is already recorded (a redelivered task)."""
        return any(e.id == exchange_id for e in self.exchanges)

    def add(self, exchange: Exchange) -> None:
        """Append ``exchange`` in time order, folding the oldest into the summary past the limit."""
        self.exchanges.append(exchange)
        self.exchanges.sort(key=lambda e: e.at)
        if exchange.role == CUSTOMER:
            self.last_inbound_at = max(self.last_inbound_at or 0.0, exchange.at)
        if len(self.exchanges) > MAX_EXCHANGES:
            folded = self.exchanges[:-KEPT_AFTER_FOLD]
            self.exchanges = self.exchanges[-KEPT_AFTER_FOLD:]
            self.summary = self.summary.absorb(folded)

    @property
    def total_exchanges(self) -> int:
        """Every exchange ever recorded: the folded ones and the ones kept."""
        return self.summary.exchanges + len(self.exchanges)


Update = Callable[[Conversation, Profile], bool]
"""Changes a conversation and profile in place; returns False to write nothing."""


# KEYS[1] the conversation, KEYS[2] the profile. ARGV: [1] the conversation as it was read (''
# when there was none), [2] the profile likewise, [3] the new conversation, [4] its TTL, [5] the
# new profile, [6] its TTL. Writes both if neither changed since it was read; 1 if written, 0 if
# another writer came first.
_WRITE_IF_UNCHANGED = """
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] or (redis.call('GET', KEYS[2]) or '') ~= ARGV[2]
then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
redis.call('SET', KEYS[2], ARGV[5], 'EX', ARGV[6])
return 1
"""


class ConversationStore:
    """Conversations and profiles, per sending number and customer."""

    def __init__(self, redis_client: redis.Redis):
        self.redis = redis_client
        self._write_if_unchanged = redis_client.register_script(_WRITE_IF_UNCHANGED)

    @staticmethod
    def key(phone_number_id: str, wa_id: str) -> str:
        return keys.CONVERSATION.format(phone_number_id=phone_number_id, wa_id=wa_id)

    @staticmethod
    def profile_key(phone_number_id: str, wa_id: str) -> str:
        return keys.PROFILE.format(phone_number_id=phone_number_id, wa_id=wa_id)

    def get(self, phone_number_id: str, wa_id: str) -> Conversation | None:
        """The conversation, or None when there is none (or it expired)."""
        return self.decode(self.redis.get(self.key(phone_number_id, wa_id)))

    def profile(self, phone_number_id: str, wa_id: str) -> Profile | None:
        """The customer's profile, or None for a customer never seen."""
        return self.decode_profile(self.redis.get(self.profile_key(phone_number_id, wa_id)))

    @staticmethod
    def decode(raw: str | None) -> Conversation | None:
        """The conversation its key holds (``raw``, read by the caller), or None."""
        return Conversation.from_dict(json.loads(raw)) if raw else None

    @staticmethod
    def decode_profile(raw: str | None) -> Profile | None:
        """The profile its key holds (``raw``, read by the caller), or None."""
        return Profile.from_dict(json.loads(raw)) if raw else None

    def expires_at(self, phone_number_id: str, wa_id: str) -> float | None:
        """When the conversation will be forgotten unless something happens, or None."""
        ttl = self.redis.ttl(self.key(phone_number_id, wa_id))
        return time.time() + ttl if ttl and ttl > 0 else None

    def record(self, phone_number_id: str, wa_id: str, exchange: Exchange, **observed: Any) -> bool:
        """Add ``exchange``; for a customer's, ``observed`` updates the profile (see
        :meth:`Profile.observe`). False when it was already recorded."""

        def apply(conversation: Conversation, profile: Profile) -> bool:
            if conversation.has(exchange.id):
                return False
            conversation.add(exchange)
            if exchange.role == CUSTOMER:
                profile.observe(at=exchange.at, entity_kinds=exchange.entities, **observed)
            return True

        return self.update(phone_number_id, wa_id, apply)

    def update(self, phone_number_id: str, wa_id: str, change: Update) -> bool:
        """Apply ``change`` atomically to the conversation and profile: read both, change them in
        Python, write both only if neither moved meanwhile (one script compares what it finds
        with what was read); start again if either did. Two round trips, where WATCH, read and
        MULTI took three."""
        key = self.key(phone_number_id, wa_id)
        profile_key = self.profile_key(phone_number_id, wa_id)
        for attempt in range(MAX_TRANSACTION_ATTEMPTS):
            raw, raw_profile = self.redis.mget(key, profile_key)
            conversation = (
                Conversation.from_dict(json.loads(raw))
                if raw
                else Conversation(phone_number_id, wa_id)
            )
            profile = Profile.from_dict(json.loads(raw_profile)) if raw_profile else Profile()
            if not change(conversation, profile):
                return False
            conversation.updated_at = time.time()
            written = self._write_if_unchanged(
                keys=[key, profile_key],
                args=[
                    raw or "",
                    raw_profile or "",
                    _json(conversation.to_dict()),
                    keys.CONVERSATION_TTL,
                    _json(asdict(profile)),
                    keys.PROFILE_TTL,
                ],
            )
            if written:
                return True
            # Another worker wrote first: back off a little, at random, and redo.
            time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        # No customer id in the message: Celery shows it in logs and Flower.
        raise ConversationBusyError("the conversation kept changing; try again")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")
