"""Typed views of Meta's webhook payloads (``object: whatsapp_business_account``).

Each object keeps the dict it came from in ``raw``, so nothing Meta sent is lost even for fields
and message types this module does not model yet. Parsing never raises on unknown content; it
raises :class:`WebhookFormatError` only when the envelope is not a WhatsApp webhook at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.whatsapp.errors import GatewayError

OBJECT_WHATSAPP = "whatsapp_business_account"
"""The ``object`` of every WhatsApp Business webhook."""

FIELD_MESSAGES = "messages"
"""The change ``field`` that carries inbound messages and outbound statuses."""

STATUS_SENT = "sent"
STATUS_DELIVERED = "delivered"
STATUS_READ = "read"
STATUS_FAILED = "failed"


class WebhookFormatError(GatewayError):
    """The payload is not a WhatsApp Business webhook envelope."""


@dataclass(frozen=True)
class Metadata:
    """Which business number a change concerns."""

    phone_number_id: str
    display_phone_number: str | None


@dataclass(frozen=True)
class Contact:
    """The customer's WhatsApp id and profile name, as Meta sends them beside messages."""

    wa_id: str
    name: str | None
    raw: dict[str, Any]


@dataclass(frozen=True)
class Message:
    """One inbound message from a customer."""

    id: str
    from_: str
    timestamp: int
    type: str
    metadata: Metadata
    contact_name: str | None
    raw: dict[str, Any]

    @property
    def text(self) -> str | None:
        """The text a customer typed or chose: text body, button text or interactive reply title."""
        content = self.content
        if self.type == "interactive":
            chosen = content.get("type")
            content = content.get(chosen) if isinstance(chosen, str) else None
            key = "title"
        else:
            key = {"text": "body", "button": "text"}.get(self.type)
        value = content.get(key) if key and isinstance(content, dict) else None
        return value if isinstance(value, str) else None

    @property
    def content(self) -> dict[str, Any]:
        """The object named by ``type`` (``text``, ``image``, ``location`` ...), or {}."""
        value = self.raw.get(self.type)
        return value if isinstance(value, dict) else {}

    @property
    def context(self) -> dict[str, Any]:
        """What the message replies to (``id``, ``from``, ``referred_product``), or {}."""
        value = self.raw.get("context")
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Status:
    """A status update for a message the business sent."""

    id: str
    status: str
    timestamp: int
    recipient_id: str | None
    metadata: Metadata
    errors: list[dict[str, Any]]
    raw: dict[str, Any]


@dataclass(frozen=True)
class Change:
    """One ``entry[].changes[]`` item: its ``field`` and its raw ``value``."""

    entry_id: str
    field: str
    value: dict[str, Any]


@dataclass
class WebhookEvent:
    """Everything one webhook delivery carries."""

    messages: list[Message] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)


def parse_webhook(payload: Any) -> WebhookEvent:
    """Parse a webhook body (already decoded JSON) into a :class:`WebhookEvent`."""
    if not isinstance(payload, dict) or payload.get("object") != OBJECT_WHATSAPP:
        raise WebhookFormatError("not a whatsapp_business_account webhook")
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise WebhookFormatError("webhook has no entry list")
    event = WebhookEvent()
    for entry in _dicts(entries):
        for change in _dicts(entry.get("changes")):
            value = change.get("value") if isinstance(change.get("value"), dict) else {}
            event.changes.append(
                Change(str(entry.get("id", "")), str(change.get("field", "")), value)
            )
            if change.get("field") == FIELD_MESSAGES:
                _parse_messages_value(value, event)
    return event


def _parse_messages_value(value: dict[str, Any], event: WebhookEvent) -> None:
    meta = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
    metadata = Metadata(
        phone_number_id=str(meta.get("phone_number_id", "")),
        display_phone_number=meta.get("display_phone_number"),
    )
    names = {}
    for raw in _dicts(value.get("contacts")):
        profile = raw.get("profile") if isinstance(raw.get("profile"), dict) else {}
        contact = Contact(wa_id=str(raw.get("wa_id", "")), name=profile.get("name"), raw=raw)
        names[contact.wa_id] = contact.name
        event.contacts.append(contact)
    for raw in _dicts(value.get("messages")):
        if not isinstance(raw.get("id"), str):
            continue  # nothing to deduplicate or answer without an id
        sender = str(raw.get("from", ""))
        event.messages.append(
            Message(
                id=raw["id"],
                from_=sender,
                timestamp=_int(raw.get("timestamp")),
                type=str(raw.get("type", "unknown")),
                metadata=metadata,
                contact_name=names.get(sender),
                raw=raw,
            )
        )
    for raw in _dicts(value.get("statuses")):
        if not isinstance(raw.get("id"), str) or not isinstance(raw.get("status"), str):
            continue
        event.statuses.append(
            Status(
                id=raw["id"],
                status=raw["status"],
                timestamp=_int(raw.get("timestamp")),
                recipient_id=raw.get("recipient_id"),
                metadata=metadata,
                errors=list(_dicts(raw.get("errors"))),
                raw=raw,
            )
        )


def _dicts(items: Any) -> list[dict[str, Any]]:
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
