"""What every responder is: the :class:`Responder` interface, what it is told (:class:`Inbound`),
what the reply service makes of its answer (:class:`Reply`), and how a backend fails."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from app.conversations.profile import Profile
from app.conversations.ranking import RankedContext
from app.errors import ConversationError


@dataclass(frozen=True)
class Inbound:
    """What a responder is told about the message it answers."""

    wa_id: str
    text: str
    """What the customer typed or chose; for media, locations and the like, a description."""
    name: str | None = None
    type: str = "text"
    structured: dict[str, Any] = field(default_factory=dict)
    """Structured input: ``choice`` (button or list reply), ``media``, ``location``, ``order``..."""
    language: str | None = None
    """"es" or "en" when known (from this message or the customer's profile)."""
    context: RankedContext = field(default_factory=RankedContext)
    profile: Profile | None = None
    message_id: str | None = None
    phone_number_id: str | None = None
    customer: str = ""
    """The customer key (their BSUID, or phone); ``wa_id`` is "" when Meta withholds the phone."""
    user_id: str | None = None
    """The customer's business-scoped user id, when Meta gave one."""


class Responder(Protocol):
    """Anything that can answer a customer: returns the reply text, or None for no reply.

    ``name`` identifies the backend (and its model) in cache keys and metrics. ``cacheable`` says
    whether its replies may be reused for an identical input and context; ``personal`` that it
    sees who the customer is, so a cached reply is reused only for the same customer.
    """

    name: str
    cacheable: bool
    personal: bool

    def reply(self, inbound: Inbound) -> str | None: ...


class ResponderError(ConversationError):
    """A backend failed to produce a reply (bad answer, HTTP error, unreachable)."""


class ResponderTimeout(ResponderError):
    """A backend did not answer within the configured timeout."""


@dataclass(frozen=True)
class Reply:
    """What the service produced, and how."""

    text: str | None
    source: str
    """``responder``, ``cache`` or ``fallback``."""
    seconds: float = 0.0
