"""What the gateway learns about a customer across conversations, in both languages."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from app.conversations.text import detect_language, fold

MAX_RATINGS = 10
"""Satisfaction ratings kept: the last ten say how the customer feels now."""

MAX_INTERESTS = 10
"""Interests kept, the most frequent first."""

QUICK = "quick"
DETAILED = "detailed"

_QUICK = re.compile(
    r"\b(?:respuesta corta|respuestas cortas|breve|resumido|resumen|al grano|sin rodeos|rapido"
    r"|short answer|short answers|keep it short|brief|briefly|quick answer|in short|tl;?dr)\b"
)
_DETAILED = re.compile(
    r"\b(?:detalle|detalles|detallado|detallada|explicame|explica|mas informacion|mas info|a fondo"
    r"|paso a paso|in detail|detailed|more detail|more details|explain|more information|more info"
    r"|step by step|in depth)\b"
)
_RATING_ID = re.compile(r"^(?:rating|rate|csat|score|stars?)[_:\-]?([1-5])$")
_RATING_TEXT = re.compile(
    r"^\s*([1-5])\s*(?:/\s*5|de 5|of 5|out of 5|estrellas?|stars?)\s*[.!]?\s*$"
)
_STARS = re.compile(r"^\s*(⭐{1,5}|★{1,5})\s*$")


@dataclass
class Profile:
    """A customer's profile: activity, language, preferences, interests, satisfaction."""

    message_count: int = 0
    first_seen: float | None = None
    last_interaction: float | None = None
    language: str | None = None
    preference: str | None = None
    """``quick`` or ``detailed`` answers, as the customer last asked; None until they do."""
    interests: dict[str, int] = field(default_factory=dict)
    """Entity kinds and product ids the customer asked about, with how often."""
    complaints: int = 0
    ratings: list[dict[str, Any]] = field(default_factory=list)
    """The last :data:`MAX_RATINGS` ratings, oldest first: ``{"score": 1..5, "at": ts}``."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["top_interests"] = self.top_interests()
        data["average_rating"] = self.average_rating()
        return data

    def top_interests(self) -> list[str]:
        """Interests, the most frequent first."""
        return [k for k, _ in sorted(self.interests.items(), key=lambda kv: (-kv[1], kv[0]))]

    def average_rating(self) -> float | None:
        """Mean of the kept ratings, or None without any."""
        if not self.ratings:
            return None
        return round(sum(r["score"] for r in self.ratings) / len(self.ratings), 2)

    def observe(
        self,
        *,
        text: str,
        at: float,
        entity_kinds: list[str],
        products: list[str] = (),  # type: ignore[assignment]
        choice_id: str | None = None,
    ) -> None:
        """Update the profile with one inbound customer message."""
        self.message_count += 1
        self.first_seen = self.first_seen or at
        self.last_interaction = max(self.last_interaction or 0.0, at)
        if text:
            self.language = detect_language(text, default=self.language)
            preference = preference_in(text)
            if preference:
                self.preference = preference
        for kind in entity_kinds:
            if kind == "complaint":
                self.complaints += 1
            else:
                self.interests[kind] = self.interests.get(kind, 0) + 1
        for product in products:
            key = f"product:{product}"
            self.interests[key] = self.interests.get(key, 0) + 1
        if len(self.interests) > MAX_INTERESTS:
            self.interests = {k: self.interests[k] for k in self.top_interests()[:MAX_INTERESTS]}
        score = rating_in(text, choice_id)
        if score is not None:
            self.ratings = [*self.ratings, {"score": score, "at": at}][-MAX_RATINGS:]


def preference_in(text: str) -> str | None:
    """``quick`` or ``detailed`` when ``text`` asks for that kind of answer, else None."""
    folded = fold(text)
    if _QUICK.search(folded):
        return QUICK
    if _DETAILED.search(folded):
        return DETAILED
    return None


def rating_in(text: str, choice_id: str | None = None) -> int | None:
    """A satisfaction score 1-5 from a survey choice (``rating_4``) or text ("4/5", "⭐⭐⭐")."""
    if choice_id:
        match = _RATING_ID.match(fold(choice_id))
        if match:
            return int(match.group(1))
    if not text:
        return None
    match = _RATING_TEXT.match(fold(text))
    if match:
        return int(match.group(1))
    stars = _STARS.match(text)
    if stars:
        return len(stars.group(1))
    return None
