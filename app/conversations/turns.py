"""Every inbound message type, turned into one shape: what the customer said or did.

A :class:`CustomerTurn` is JSON-safe, so it travels between the inbound and context workers as a
task argument, and carries both a plain-text description (for the context and for responders that
only read text) and the structured input (a button's id, a location, a media file).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from app.conversations.context import CUSTOMER, Exchange
from app.conversations.text import entities
from app.whatsapp.webhook import Message

MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})
"""Message types whose content is a file held by Meta, fetched by media id."""

SILENT_TYPES = frozenset({"reaction", "system", "unsupported"})
"""Recorded in the conversation, never answered: a reaction is not a question, a system message
is Meta's, and an unsupported message has no content to answer."""


@dataclass(frozen=True)
class CustomerTurn:
    """One inbound message, described."""

    id: str
    wa_id: str
    """The customer's phone number, or "" when Meta withholds it (a customer with a username)."""
    phone_number_id: str
    type: str
    at: float
    text: str
    """What the customer typed or chose; for other types a description of what they sent."""
    name: str | None = None
    structured: dict[str, Any] = field(default_factory=dict)
    replied_to: str | None = None
    """The id of the message this one answers or reacts to, if any."""
    customer: str = ""
    """The customer key (see :mod:`app.conversations.customers`) the conversation is stored under;
    the phone number for a turn queued before the contact book existed."""
    user_id: str | None = None
    """The customer's business-scoped user id, when Meta gave one."""

    def __post_init__(self) -> None:
        if not self.customer:
            object.__setattr__(self, "customer", self.wa_id or self.user_id or "")

    @property
    def address(self) -> dict[str, str]:
        """Who a reply goes to: ``to`` the phone when known, else ``recipient`` the BSUID."""
        return {"to": self.wa_id} if self.wa_id else {"recipient": self.user_id or self.customer}

    @property
    def expects_reply(self) -> bool:
        """Whether the responder is asked to answer this turn."""
        return self.type not in SILENT_TYPES

    @property
    def choice_id(self) -> str | None:
        """The id of a button or list row the customer chose, if that is what this turn is."""
        choice = self.structured.get("choice") or {}
        return choice.get("id")

    @property
    def products(self) -> list[str]:
        """Catalogue product ids this turn concerns (a product inquiry or an order)."""
        found = []
        referred = self.structured.get("referred_product") or {}
        if referred.get("product_retailer_id"):
            found.append(str(referred["product_retailer_id"]))
        for item in (self.structured.get("order") or {}).get("items", []):
            if item.get("product_retailer_id"):
                found.append(str(item["product_retailer_id"]))
        return found

    def with_media(self, **media: Any) -> CustomerTurn:
        """This turn with more facts about its media file (where it was stored, or why not)."""
        structured = {**self.structured, "media": {**self.structured.get("media", {}), **media}}
        return replace(self, structured=structured)

    def exchange(self) -> Exchange:
        """The turn as a conversation exchange."""
        kinds = entities(self.text)
        if self.products and "product" not in kinds:
            kinds.append("product")
        if self.type == "order" and "order" not in kinds:
            kinds.append("order")
        data = dict(self.structured)
        if self.replied_to:
            data["replied_to"] = self.replied_to
        return Exchange(
            id=self.id, role=CUSTOMER, type=self.type, text=self.text, at=self.at, entities=kinds,
            data=data,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomerTurn:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def describe(message: Message, customer: str | None = None) -> CustomerTurn:
    """The :class:`CustomerTurn` for an inbound message of any type Meta sends, from the customer
    keyed ``customer`` (default: the sender's BSUID, else their phone)."""
    content = message.content
    kind = message.type
    structured: dict[str, Any] = {}
    text = message.text or ""
    if kind == "text":
        referred = message.context.get("referred_product")
        if isinstance(referred, dict):
            structured["referred_product"] = referred
        referral = message.raw.get("referral")
        if isinstance(referral, dict):
            structured["referral"] = {
                k: referral.get(k) for k in ("source_type", "source_url", "headline", "body")
            }
    elif kind == "interactive":
        reply_type = str(content.get("type", ""))
        reply = content.get(reply_type) if isinstance(content.get(reply_type), dict) else {}
        if reply_type == "nfm_reply":
            structured["form"] = {"name": reply.get("name"), "response": reply.get("response_json")}
            text = text or "[form submitted]"
        else:
            structured["choice"] = {
                "kind": reply_type,
                "id": reply.get("id"),
                "title": reply.get("title"),
                "description": reply.get("description"),
            }
    elif kind == "button":
        structured["choice"] = {
            "kind": "template_button",
            "id": content.get("payload"),
            "title": content.get("text"),
        }
    elif kind in MEDIA_TYPES:
        structured["media"] = media = {
            "kind": kind,
            "id": content.get("id"),
            "mime_type": content.get("mime_type"),
            "sha256": content.get("sha256"),
        }
        for extra in ("filename", "voice", "animated"):
            if extra in content:
                media[extra] = content[extra]
        caption = content.get("caption") or ""
        text = _media_description(media) + (f" {caption}" if caption else "")
    elif kind == "location":
        structured["location"] = location = {
            k: content.get(k) for k in ("latitude", "longitude", "name", "address", "url")
        }
        place = ", ".join(str(location[k]) for k in ("name", "address") if location.get(k))
        where = f"{place} " if place else ""
        text = f"[location] {where}({location['latitude']}, {location['longitude']})"
    elif kind == "contacts":
        cards = [_contact_card(c) for c in message.raw.get("contacts") or [] if isinstance(c, dict)]
        structured["contacts"] = cards
        text = "[shared contact] " + "; ".join(
            " ".join(filter(None, [c["name"], *c["phones"]])) for c in cards
        )
    elif kind == "order":
        items = [
            {k: item.get(k) for k in ("product_retailer_id", "quantity", "item_price", "currency")}
            for item in content.get("product_items") or []
            if isinstance(item, dict)
        ]
        structured["order"] = {
            "catalog_id": content.get("catalog_id"),
            "items": items,
            "text": content.get("text"),
        }
        lines = [
            f"{i['quantity']} x {i['product_retailer_id']} at {i['item_price']} {i['currency']}"
            for i in items
        ]
        text = (
            "[order] " + "; ".join(lines) + (f". {content['text']}" if content.get("text") else "")
        )
    elif kind == "reaction":
        emoji = content.get("emoji") or ""
        structured["reaction"] = {"message_id": content.get("message_id"), "emoji": emoji}
        text = f"[reaction {emoji}]" if emoji else "[reaction removed]"
    elif kind == "system":
        structured["system"] = {k: content.get(k) for k in ("type", "body", "wa_id")}
        text = f"[system] {content.get('body') or content.get('type') or ''}".strip()
    else:
        errors = message.raw.get("errors")
        structured["unsupported"] = {
            "type": kind,
            "errors": errors if isinstance(errors, list) else [],
        }
        kind = "unsupported"
        text = "[unsupported message]"
    replied_to = message.context.get("id")
    if kind == "reaction":
        replied_to = structured["reaction"]["message_id"]
    return CustomerTurn(
        id=message.id,
        wa_id=message.from_,
        phone_number_id=message.metadata.phone_number_id,
        type=kind,
        at=float(message.timestamp) or time.time(),  # Meta always sends one; tests may not
        text=text,
        name=message.contact_name,
        structured=structured,
        replied_to=replied_to if isinstance(replied_to, str) else None,
        customer=customer or message.from_user_id or message.from_,
        user_id=message.from_user_id,
    )


def _media_description(media: dict[str, Any]) -> str:
    details = [d for d in (media.get("filename"), media.get("mime_type")) if d]
    if media.get("voice"):
        details.append("voice note")
    return f"[{media['kind']}" + (f": {', '.join(details)}" if details else "") + "]"


def _contact_card(contact: dict[str, Any]) -> dict[str, Any]:
    name = contact.get("name") if isinstance(contact.get("name"), dict) else {}
    org = contact.get("org") if isinstance(contact.get("org"), dict) else {}
    phones = [p for p in contact.get("phones") or [] if isinstance(p, dict)]
    return {
        "name": name.get("formatted_name")
        or " ".join(filter(None, [name.get("first_name"), name.get("last_name")])),
        "phones": [str(p.get("phone") or p.get("wa_id")) for p in phones],
        "wa_ids": [p["wa_id"] for p in phones if p.get("wa_id")],
        "company": org.get("company"),
    }
