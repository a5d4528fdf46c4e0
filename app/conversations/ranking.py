"""Which past exchanges a responder sees: the most useful few, in order, and a summary of the rest.

Each exchange is scored by recency (last hour, last day, older), lexical relevance to the current
message (TF-IDF cosine over accent-folded, stop-word-free, plural-stemmed terms, so a word shared by
every message counts for little) and the important entities it mentions (prices, orders, bookings,
products, complaints). The best :data:`~app.config.DEFAULT_CONTEXT_MESSAGES` are kept
in time order; the others, and anything folded earlier, are handed over as one summary.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from app.config import DEFAULT_CONTEXT_MESSAGES
from app.conversations.context import Conversation, Exchange
from app.conversations.text import entities, normalise, terms

HOUR = 3600.0
DAY = 24 * HOUR

RECENCY_LAST_HOUR = 1.0
"""Score of an exchange from the last hour: the thread the customer is in."""
RECENCY_LAST_DAY = 0.5
"""Score of an exchange from the last day."""
RECENCY_OLDER = 0.15
"""Score of anything older: kept only when relevant or important."""

LATEST_BONUS = 0.5
"""Added to the two latest exchanges: a follow-up ("and for that one?") refers to them."""

RELEVANCE_WEIGHT = 2.0
"""Weight of the lexical relevance (a cosine in [0, 1]) against recency."""

ENTITY_WEIGHT = 0.3
"""Added per important entity kind an exchange mentions (at most two count)."""

SHARED_ENTITY_WEIGHT = 0.4
"""Added when an exchange mentions an entity kind the current message also mentions."""


@dataclass(frozen=True)
class RankedContext:
    """What a responder is given: the chosen exchanges (oldest first) and a summary of the rest."""

    messages: list[Exchange] = field(default_factory=list)
    summary: str = ""
    omitted: int = 0
    """Exchanges not shown verbatim (folded earlier or ranked out)."""

    def fingerprint(self) -> str:
        """A hash of what the responder sees, blind to timestamps: equal contexts, equal hashes."""
        shown = [[e.role, e.type, normalise(e.text)] for e in self.messages]
        data = json.dumps([shown, self.summary], separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(data.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {
            "messages": [e.to_dict() for e in self.messages],
            "summary": self.summary,
            "omitted": self.omitted,
        }


def rank_context(
    conversation: Conversation | None,
    current_text: str,
    *,
    exclude_id: str | None = None,
    limit: int = DEFAULT_CONTEXT_MESSAGES,
    now: float | None = None,
) -> RankedContext:
    """The context for answering ``current_text``: at most ``limit`` exchanges and a summary."""
    if conversation is None:
        return RankedContext()
    now = time.time() if now is None else now
    candidates = [e for e in conversation.exchanges if e.id != exclude_id]
    scores = score_exchanges(candidates, current_text, now=now)
    chosen_ids = {
        id(e) for e, _ in sorted(zip(candidates, scores, strict=True), key=lambda p: -p[1])[:limit]
    }
    chosen = [e for e in candidates if id(e) in chosen_ids]
    left_out = [e for e in candidates if id(e) not in chosen_ids]
    summary = conversation.summary.absorb(left_out) if left_out else conversation.summary
    return RankedContext(messages=chosen, summary=summary.text(), omitted=summary.exchanges)


def score_exchanges(exchanges: list[Exchange], current_text: str, *, now: float) -> list[float]:
    """Each exchange's score for answering ``current_text`` (higher is more useful)."""
    documents = [Counter(terms(e.text)) for e in exchanges]
    query = Counter(terms(current_text))
    idf = _idf([*documents, query])
    query_vector = _weigh(query, idf)
    current_entities = set(entities(current_text))
    latest = {id(e) for e in sorted(exchanges, key=lambda e: e.at)[-2:]}
    scores = []
    for exchange, document in zip(exchanges, documents, strict=True):
        score = recency(now - exchange.at)
        if id(exchange) in latest:
            score += LATEST_BONUS
        score += RELEVANCE_WEIGHT * _cosine(query_vector, _weigh(document, idf))
        kinds = set(exchange.entities)
        score += ENTITY_WEIGHT * min(len(kinds), 2)
        if kinds & current_entities:
            score += SHARED_ENTITY_WEIGHT
        scores.append(score)
    return scores


def recency(age_seconds: float) -> float:
    """The recency bucket's score for an exchange ``age_seconds`` old."""
    if age_seconds <= HOUR:
        return RECENCY_LAST_HOUR
    if age_seconds <= DAY:
        return RECENCY_LAST_DAY
    return RECENCY_OLDER


def _idf(documents: list[Counter]) -> dict[str, float]:
    count = len(documents)
    frequency: Counter = Counter()
    for document in documents:
        frequency.update(document.keys())
    # Smoothed, and never zero: a term in every message still says a little.
    return {term: math.log((1 + count) / (1 + df)) + 1.0 for term, df in frequency.items()}


def _weigh(document: Counter, idf: dict[str, float]) -> dict[str, float]:
    return {term: (1 + math.log(tf)) * idf.get(term, 1.0) for term, tf in document.items()}


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if not a or not b:
        return 0.0
    dot = sum(weight * b.get(term, 0.0) for term, weight in a.items())
    norm = math.sqrt(sum(w * w for w in a.values())) * math.sqrt(sum(w * w for w in b.values()))
    return dot / norm if norm else 0.0
