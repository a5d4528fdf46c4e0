"""Typed views of Meta's webhook payloads (``object: whatsapp_business_account``).

Each object keeps the dict it came from in ``raw``, so nothing Meta sent is lost even for fields
and message types this module does not model yet. Parsing is total: it raises
:class:`WebhookFormatError` only when the envelope is not a WhatsApp webhook at all, and a message
or status it cannot read (no id, a timestamp that is no Unix time, a value of the wrong type)
becomes a :class:`Malformed` item carrying its reason and raw part, so that its siblings are
processed all the same. Every string it hands on is valid Unicode: a lone surrogate (JSON allows
``"\ud800"``) becomes U+FFFD, since nothing downstream could encode it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from app.errors import WhatsAppError
from app.whatsapp.builders import (
    ContactAddress,
    ContactCard,
    ContactEmail,
    ContactName,
    ContactOrg,
    ContactPhone,
    ContactUrl,
)

OBJECT_WHATSAPP = "whatsapp_business_account"
"""The ``object`` of every WhatsApp Business webhook."""

FIELD_MESSAGES = "messages"
"""The change ``field`` that carries inbound messages and outbound statuses."""

FIELD_USER_ID_UPDATE = "user_id_update"
"""The change ``field`` that reports a customer's new business-scoped user id after a number change."""

FIELD_USER_PREFERENCES = "user_preferences"
"""The change ``field`` that reports a customer stopping or resuming marketing messages."""

GROUP_FIELD_PREFIX = "group_"
"""Change fields about groups: ``group_lifecycle_update``, ``group_participants_update`` ..."""

MEDIA_MESSAGE_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})
"""Inbound message types whose object is downloadable media."""

WAMID = re.compile(r"[A-Za-z0-9._=:+/-]{1,256}")
"""What a message id (``wamid.HBgL…``) is made of; anything else is not an id (and would carry
whatever it holds into logs and task results, where ids go)."""

STATUS_NAME = re.compile(r"[a-z_]{1,32}")
"""What a status (``sent``, ``delivered``, ``read``, ``failed`` …) is made of."""

MAX_TIMESTAMP = 2**53
"""Larger Unix times are not times (and past this, floats lose whole seconds)."""

STATUS_SENT = "sent"
STATUS_DELIVERED = "delivered"
STATUS_READ = "read"
STATUS_FAILED = "failed"


class WebhookFormatError(WhatsAppError):
    """The payload is not a WhatsApp Business webhook envelope."""


@dataclass(frozen=True)
class Metadata:
    """Which business number a change concerns."""

    phone_number_id: str
    display_phone_number: str | None


@dataclass(frozen=True)
class Contact:
    """A customer as Meta describes them beside messages and statuses.

    Since 2026 Meta adds the business-scoped user id (``user_id``, a BSUID such as
    ``US.13491208655302741918``) and its parent (``parent_user_id``, ``US.ENT.…``); a customer
    who adopted a username may come with no phone number (``wa_id`` is then None).
    """

    wa_id: str | None
    name: str | None
    raw: dict[str, Any]
    user_id: str | None = None
    parent_user_id: str | None = None
    username: str | None = None


@dataclass(frozen=True)
class ReferredProduct:
    """The catalog product a customer asked about."""

    catalog_id: str | None
    product_retailer_id: str | None


@dataclass(frozen=True)
class MessageContext:
    """What an inbound message answers or forwards."""

    id: str | None
    from_: str | None
    forwarded: bool
    frequently_forwarded: bool
    referred_product: ReferredProduct | None


@dataclass(frozen=True)
class InboundMedia:
    """An image, audio, video, document or sticker: download it by ``id``, check ``sha256``."""

    id: str
    mime_type: str | None
    sha256: str | None
    caption: str | None = None
    filename: str | None = None
    animated: bool | None = None
    voice: bool | None = None


@dataclass(frozen=True)
class Location:
    latitude: float | None
    longitude: float | None
    name: str | None = None
    address: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Reaction:
    """An emoji on one of our messages (an empty emoji removes it)."""

    message_id: str | None
    emoji: str | None


@dataclass(frozen=True)
class ButtonReply:
    """A tap on a template's quick-reply button."""

    payload: str | None
    text: str | None


@dataclass(frozen=True)
class InteractiveReply:
    """A reply to an interactive message: a button, a list row, or a completed flow."""

    type: str
    id: str | None = None
    title: str | None = None
    description: str | None = None
    name: str | None = None
    body: str | None = None
    response_json: str | None = None


@dataclass(frozen=True)
class OrderItem:
    product_retailer_id: str | None
    quantity: int | None
    item_price: float | None
    currency: str | None


@dataclass(frozen=True)
class Order:
    """A cart a customer sent from the catalog."""

    catalog_id: str | None
    text: str | None
    product_items: tuple[OrderItem, ...]


@dataclass(frozen=True)
class SystemUpdate:
    """A system notice: a customer changed number (``user_changed_number``: ``customer`` the old
    number, ``wa_id`` the new one) or business-scoped user id (``user_changed_user_id``), with the
    new and previous BSUIDs where Meta gives them."""

    type: str | None
    body: str | None
    wa_id: str | None
    customer: str | None = None
    identity: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None
    previous_user_id: str | None = None
    previous_parent_user_id: str | None = None


@dataclass(frozen=True)
class Referral:
    """The ad or post a customer came from (Click to WhatsApp)."""

    source_url: str | None
    source_id: str | None
    source_type: str | None
    body: str | None = None
    headline: str | None = None
    media_type: str | None = None
    image_url: str | None = None
    video_url: str | None = None
    thumbnail_url: str | None = None
    ctwa_clid: str | None = None
    welcome_message: str | None = None


@dataclass(frozen=True)
class ErrorDetail:
    """One of Meta's ``errors[]`` items (on a failed status or an unsupported message)."""

    code: int | None
    title: str | None
    message: str | None = None
    details: str | None = None
    href: str | None = None


@dataclass(frozen=True)
class Pricing:
    billable: bool | None
    pricing_model: str | None
    category: str | None
    type: str | None = None


@dataclass(frozen=True)
class Conversation:
    id: str | None
    origin_type: str | None
    expiration_timestamp: int | None = None


@dataclass(frozen=True)
class Participant:
    input: str | None
    wa_id: str | None


@dataclass(frozen=True)
class GroupEvent:
    """A group change (``group_lifecycle_update``, ``group_participants_update`` ...)."""

    field: str
    group_id: str
    type: str | None
    timestamp: int
    metadata: Metadata
    request_id: str | None = None
    subject: str | None = None
    description: str | None = None
    added_participants: tuple[Participant, ...] = ()
    removed_participants: tuple[Participant, ...] = ()
    profile_picture: InboundMedia | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    """One inbound message from a customer.

    ``from_`` is the customer's phone number, or ``""`` when Meta withholds it (a customer with a
    username); ``from_user_id`` is their business-scoped user id when Meta sends one.
    """

    id: str
    from_: str
    timestamp: int
    type: str
    metadata: Metadata
    contact_name: str | None
    raw: dict[str, Any]
    from_user_id: str | None = None
    from_parent_user_id: str | None = None
    contact: Contact | None = None

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

    @property
    def reply_context(self) -> MessageContext | None:
        """The typed :attr:`context`, or None when the message answers nothing."""
        context = self.context
        if not context:
            return None
        product = _dict(context.get("referred_product"))
        return MessageContext(
            id=context.get("id"),
            from_=context.get("from"),
            forwarded=bool(context.get("forwarded")),
            frequently_forwarded=bool(context.get("frequently_forwarded")),
            referred_product=ReferredProduct(
                product.get("catalog_id"), product.get("product_retailer_id")
            )
            if product
            else None,
        )

    @property
    def media(self) -> InboundMedia | None:
        """The media of an image, audio, video, document or sticker message."""
        if self.type not in MEDIA_MESSAGE_TYPES or not self.content.get("id"):
            return None
        return _media(self.content)

    @property
    def location(self) -> Location | None:
        if self.type != "location":
            return None
        c = self.content
        return Location(
            c.get("latitude"), c.get("longitude"), c.get("name"), c.get("address"), c.get("url")
        )

    @property
    def shared_contacts(self) -> list[ContactCard]:
        """The contact cards of a ``contacts`` message."""
        if self.type != "contacts":
            return []
        return [contact_card(card) for card in _dicts(self.raw.get("contacts"))]

    @property
    def reaction(self) -> Reaction | None:
        if self.type != "reaction":
            return None
        return Reaction(self.content.get("message_id"), self.content.get("emoji"))

    @property
    def button(self) -> ButtonReply | None:
        if self.type != "button":
            return None
        return ButtonReply(self.content.get("payload"), self.content.get("text"))

    @property
    def interactive_reply(self) -> InteractiveReply | None:
        """A ``button_reply``, ``list_reply`` or ``nfm_reply`` (a completed flow)."""
        if self.type != "interactive":
            return None
        kind = str(self.content.get("type", ""))
        reply = _dict(self.content.get(kind))
        return InteractiveReply(
            type=kind,
            id=reply.get("id"),
            title=reply.get("title"),
            description=reply.get("description"),
            name=reply.get("name"),
            body=reply.get("body"),
            response_json=reply.get("response_json"),
        )

    @property
    def order(self) -> Order | None:
        if self.type != "order":
            return None
        items = tuple(
            OrderItem(
                i.get("product_retailer_id"),
                i.get("quantity"),
                i.get("item_price"),
                i.get("currency"),
            )
            for i in _dicts(self.content.get("product_items"))
        )
        return Order(self.content.get("catalog_id"), self.content.get("text"), items)

    @property
    def system(self) -> SystemUpdate | None:
        if self.type != "system":
            return None
        c = self.content
        return SystemUpdate(
            _str(c.get("type")),
            _str(c.get("body")),
            _str(c.get("wa_id") or c.get("new_wa_id")),
            _str(c.get("customer")),
            _str(c.get("identity")),
            _str(c.get("user_id")),
            _str(c.get("parent_user_id")),
            _str(c.get("previous_user_id")),
            _str(c.get("previous_parent_user_id")),
        )

    @property
    def referral(self) -> Referral | None:
        """The ad or post the customer came from, when the message started from one."""
        r = _dict(self.raw.get("referral"))
        if not r:
            return None
        return Referral(
            source_url=r.get("source_url"),
            source_id=r.get("source_id"),
            source_type=r.get("source_type"),
            body=r.get("body"),
            headline=r.get("headline"),
            media_type=r.get("media_type"),
            image_url=r.get("image_url"),
            video_url=r.get("video_url"),
            thumbnail_url=r.get("thumbnail_url"),
            ctwa_clid=r.get("ctwa_clid"),
            welcome_message=_dict(r.get("welcome_message")).get("text"),
        )

    @property
    def errors(self) -> list[ErrorDetail]:
        """Why Meta could not pass the message on (``unsupported`` messages)."""
        return [_error(e) for e in _dicts(self.raw.get("errors"))]


@dataclass(frozen=True)
class Status:
    """A status update for a message the business sent: to ``recipient_id`` (a phone number) or,
    when Meta knows the customer only by it, ``recipient_user_id`` (a BSUID). ``contacts`` is the
    customer as Meta describes them (absent on failed statuses)."""

    id: str
    status: str
    timestamp: int
    recipient_id: str | None
    metadata: Metadata
    errors: list[dict[str, Any]]
    raw: dict[str, Any]
    recipient_user_id: str | None = None
    recipient_parent_user_id: str | None = None
    contacts: tuple[Contact, ...] = ()

    @property
    def error_details(self) -> list[ErrorDetail]:
        """The typed :attr:`errors` of a ``failed`` status."""
        return [_error(e) for e in self.errors]

    @property
    def pricing(self) -> Pricing | None:
        p = _dict(self.raw.get("pricing"))
        if not p:
            return None
        return Pricing(p.get("billable"), p.get("pricing_model"), p.get("category"), p.get("type"))

    @property
    def conversation(self) -> Conversation | None:
        c = _dict(self.raw.get("conversation"))
        if not c:
            return None
        expiration = c.get("expiration_timestamp")
        return Conversation(
            c.get("id"),
            _dict(c.get("origin")).get("type"),
            _int(expiration) if expiration is not None else None,
        )

    @property
    def biz_opaque_callback_data(self) -> str | None:
        """The tracking string the business sent with the message, echoed back."""
        return self.raw.get("biz_opaque_callback_data")


@dataclass(frozen=True)
class Change:
    """One ``entry[].changes[]`` item: its ``field`` and its raw ``value``."""

    entry_id: str
    field: str
    value: dict[str, Any]


@dataclass(frozen=True)
class IdentityChange:
    """A customer's identifiers changed: a new phone number, a new business-scoped user id, or
    both. Built from ``user_changed_number`` and ``user_changed_user_id`` system messages and
    from ``user_id_update`` changes; every field Meta did not send is None."""

    phone_number_id: str
    timestamp: int
    previous_wa_id: str | None = None
    wa_id: str | None = None
    previous_user_id: str | None = None
    user_id: str | None = None
    previous_parent_user_id: str | None = None
    parent_user_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UserPreference:
    """A customer's choice about a category of messages (``user_preferences`` change): for
    example ``category`` ``marketing_messages`` with ``value`` ``stop`` or ``resume``. The
    customer is named by phone (``wa_id``), business-scoped user id, or both."""

    phone_number_id: str
    timestamp: int
    category: str | None
    value: str | None
    detail: str | None = None
    wa_id: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Malformed:
    """A message or status (``kind``) that could not be read, and why; ``raw`` is the part as
    Meta sent it, ``metadata`` and ``contacts`` the raw objects beside it in its change."""

    kind: str
    reason: str
    raw: Any
    metadata: dict[str, Any] = field(default_factory=dict)
    contacts: list[Any] = field(default_factory=list)


class UnreadablePartError(WhatsAppError):
    """A message or status of a webhook cannot be read; the message is the reason, never the
    part's content. Raised and caught inside the parse: the part becomes :class:`Malformed`."""


@dataclass
class WebhookEvent:
    """Everything one webhook delivery carries."""

    messages: list[Message] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    groups: list[GroupEvent] = field(default_factory=list)
    identity_changes: list[IdentityChange] = field(default_factory=list)
    user_preferences: list[UserPreference] = field(default_factory=list)
    malformed: list[Malformed] = field(default_factory=list)


def parse_webhook(payload: Any) -> WebhookEvent:
    """Parse a webhook body (already decoded JSON) into a :class:`WebhookEvent`."""
    if not isinstance(payload, dict) or payload.get("object") != OBJECT_WHATSAPP:
        raise WebhookFormatError("not a whatsapp_business_account webhook")
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise WebhookFormatError("webhook has no entry list")
    entries = valid_unicode(entries)
    event = WebhookEvent()
    for entry in _dicts(entries):
        for change in _dicts(entry.get("changes")):
            value = change.get("value") if isinstance(change.get("value"), dict) else {}
            event.changes.append(
                Change(str(entry.get("id", "")), str(change.get("field", "")), value)
            )
            if change.get("field") == FIELD_MESSAGES:
                _parse_messages_value(value, event)
            elif change.get("field") == FIELD_USER_ID_UPDATE:
                _parse_user_id_update_value(value, event)
            elif change.get("field") == FIELD_USER_PREFERENCES:
                _parse_user_preferences_value(value, event)
            elif str(change.get("field", "")).startswith(GROUP_FIELD_PREFIX):
                _parse_groups_value(str(change["field"]), value, event)
    return event


def carries_only_statuses(payload: Any) -> bool:
    """Whether a decoded webhook body is a delivery of statuses and nothing else: every change a
    ``messages`` change with a ``statuses`` list and no ``messages``. Looks at the shape only; the
    statuses themselves are read, and refused one by one, where they are applied."""
    if not isinstance(payload, dict) or payload.get("object") != OBJECT_WHATSAPP:
        return False
    entries = payload.get("entry")
    if not isinstance(entries, list) or not entries:
        return False
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list) or not changes:
            return False
        for change in changes:
            if not isinstance(change, dict) or change.get("field") != FIELD_MESSAGES:
                return False
            value = change.get("value")
            if (
                not isinstance(value, dict)
                or "messages" in value
                or not isinstance(value.get("statuses"), list)
            ):
                return False
    return True


def _parse_messages_value(value: dict[str, Any], event: WebhookEvent) -> None:
    metadata = _metadata(value)
    contacts = _contacts(value.get("contacts"))
    event.contacts.extend(contacts)

    def malformed(kind: str, raw: Any, reason: str) -> None:
        event.malformed.append(
            Malformed(kind, reason, raw, _dict(value.get("metadata")), [c.raw for c in contacts])
        )

    for raw in _items(value.get("messages")):
        try:
            message = _message(raw, metadata, contacts)
            change = _identity_change(message)
        except Exception as exc:  # noqa: BLE001 - one unreadable message must not cost the others
            malformed("message", raw, _reason(exc))
            continue
        event.messages.append(message)
        if change is not None:
            event.identity_changes.append(change)
    for raw in _items(value.get("statuses")):
        try:
            status = _status(raw, metadata, contacts)
        except Exception as exc:  # noqa: BLE001 - as for messages
            malformed("status", raw, _reason(exc))
            continue
        event.statuses.append(status)


def _message(raw: Any, metadata: Metadata, contacts: list[Contact]) -> Message:
    if not isinstance(raw, dict):
        raise UnreadablePartError("the message is not an object")
    if not _is_id(raw.get("id")):
        raise UnreadablePartError("the message has no id")  # nothing to deduplicate or answer
    for name in ("from", "from_user_id", "from_parent_user_id", "type"):
        if raw.get(name) is not None and not isinstance(raw[name], str):
            raise UnreadablePartError(f"the message's {name} is not a string")
    sender = raw.get("from") or ""
    user_id = raw.get("from_user_id")
    contact = _matching(contacts, sender, user_id)
    return Message(
        id=raw["id"],
        from_=sender,
        timestamp=_timestamp(raw.get("timestamp")),
        type=raw.get("type") or "unknown",
        metadata=metadata,
        contact_name=contact.name if contact else None,
        raw=raw,
        from_user_id=user_id or (contact.user_id if contact else None),
        from_parent_user_id=raw.get("from_parent_user_id")
        or (contact.parent_user_id if contact else None),
        contact=contact,
    )


def _status(raw: Any, metadata: Metadata, contacts: list[Contact]) -> Status:
    if not isinstance(raw, dict):
        raise UnreadablePartError("the status is not an object")
    status = raw.get("status")
    if (
        not _is_id(raw.get("id"))
        or not isinstance(status, str)
        or not STATUS_NAME.fullmatch(status)
    ):
        raise UnreadablePartError("the status has no id or no status")
    for name in ("recipient_id", "recipient_user_id", "recipient_parent_user_id"):
        if raw.get(name) is not None and not isinstance(raw[name], (str, int)):
            raise UnreadablePartError(f"the status's {name} is not a string")
    return Status(
        id=raw["id"],
        status=raw["status"],
        timestamp=_timestamp(raw.get("timestamp")),
        recipient_id=_str(raw.get("recipient_id")),
        metadata=metadata,
        errors=list(_dicts(raw.get("errors"))),
        raw=raw,
        recipient_user_id=_str(raw.get("recipient_user_id")),
        recipient_parent_user_id=_str(raw.get("recipient_parent_user_id")),
        contacts=tuple(contacts),
    )


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and WAMID.fullmatch(value) is not None


def _timestamp(value: Any) -> int:
    """A Unix time in seconds (0 when absent); anything else is unreadable."""
    if value is None:
        return 0
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 20:
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if type(value) is not int or not 0 <= value <= MAX_TIMESTAMP:
        raise UnreadablePartError("the timestamp is not a Unix time")
    return value


def _reason(exc: Exception) -> str:
    """Why a part is unreadable, without any of its content."""
    return (
        str(exc) if isinstance(exc, UnreadablePartError) else f"unreadable ({type(exc).__name__})"
    )


def valid_unicode(value: Any) -> Any:
    """``value`` (decoded JSON) with every lone surrogate in its strings replaced by U+FFFD."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return value
    if isinstance(value, list):
        return [valid_unicode(item) for item in value]
    if isinstance(value, dict):
        return {valid_unicode(k): valid_unicode(v) for k, v in value.items()}
    return value


def _parse_user_id_update_value(value: dict[str, Any], event: WebhookEvent) -> None:
    """``user_id_update[]``: each item names the customer (``wa_id``) and gives ``user_id`` and
    ``parent_user_id`` as ``{"previous": ..., "current": ...}``."""
    metadata = _metadata(value)
    event.contacts.extend(_contacts(value.get("contacts")))
    for raw in _dicts(value.get("user_id_update")):
        user_id, previous_user_id = _current_and_previous(raw.get("user_id"))
        parent_user_id, previous_parent_user_id = _current_and_previous(raw.get("parent_user_id"))
        event.identity_changes.append(
            IdentityChange(
                phone_number_id=metadata.phone_number_id,
                timestamp=_int(raw.get("timestamp")),
                wa_id=_str(raw.get("wa_id")) or None,
                previous_user_id=previous_user_id,
                user_id=user_id,
                previous_parent_user_id=previous_parent_user_id,
                parent_user_id=parent_user_id,
                raw=raw,
            )
        )


def _current_and_previous(value: Any) -> tuple[str | None, str | None]:
    """A ``{"previous", "current"}`` pair; a bare string is taken as the current value."""
    if isinstance(value, dict):
        return _str(value.get("current")) or None, _str(value.get("previous")) or None
    return _str(value) or None, None


def _parse_user_preferences_value(value: dict[str, Any], event: WebhookEvent) -> None:
    metadata = _metadata(value)
    contacts = _contacts(value.get("contacts"))
    event.contacts.extend(contacts)
    for raw in _dicts(value.get("user_preferences")):
        wa_id = _str(raw.get("wa_id")) or None
        user_id = _str(raw.get("user_id")) or None
        contact = _matching(contacts, wa_id or "", user_id)
        event.user_preferences.append(
            UserPreference(
                phone_number_id=metadata.phone_number_id,
                timestamp=_int(raw.get("timestamp")),
                category=_str(raw.get("category")),
                value=_str(raw.get("value")),
                detail=_str(raw.get("detail")),
                wa_id=wa_id or (contact.wa_id if contact else None),
                user_id=user_id or (contact.user_id if contact else None),
                parent_user_id=_str(raw.get("parent_user_id"))
                or (contact.parent_user_id if contact else None),
                raw=raw,
            )
        )


def _contacts(items: Any) -> list[Contact]:
    contacts = []
    for raw in _dicts(items):
        profile = _dict(raw.get("profile"))
        contacts.append(
            Contact(
                wa_id=_str(raw.get("wa_id")) or None,
                name=_str(profile.get("name")),
                raw=raw,
                user_id=_str(raw.get("user_id")) or None,
                parent_user_id=_str(raw.get("parent_user_id")) or None,
                username=_str(profile.get("username")) or None,
            )
        )
    return contacts


def _matching(contacts: list[Contact], wa_id: str, user_id: str | None) -> Contact | None:
    """The contact a message came from: by BSUID, else by phone, else the only one."""
    for contact in contacts:
        if (user_id and contact.user_id == user_id) or (wa_id and contact.wa_id == wa_id):
            return contact
    return contacts[0] if len(contacts) == 1 and not (wa_id or user_id) else None


def _identity_change(message: Message) -> IdentityChange | None:
    """The identity change a ``user_changed_number`` or ``user_changed_user_id`` notice reports."""
    system = message.system
    if system is None or system.type not in ("user_changed_number", "user_changed_user_id"):
        return None
    return IdentityChange(
        phone_number_id=message.metadata.phone_number_id,
        timestamp=message.timestamp,
        previous_wa_id=system.customer or message.from_ or None,
        wa_id=system.wa_id,
        previous_user_id=system.previous_user_id or message.from_user_id,
        user_id=system.user_id,
        previous_parent_user_id=system.previous_parent_user_id,
        parent_user_id=system.parent_user_id,
        raw=message.raw,
    )


def _parse_groups_value(field_name: str, value: dict[str, Any], event: WebhookEvent) -> None:
    metadata = _metadata(value)
    for raw in _dicts(value.get("groups")):
        picture = _dict(raw.get("profile_picture"))
        event.groups.append(
            GroupEvent(
                field=field_name,
                group_id=str(raw.get("group_id", "")),
                type=raw.get("type"),
                timestamp=_int(raw.get("timestamp")),
                metadata=metadata,
                request_id=raw.get("request_id"),
                subject=raw.get("subject"),
                description=raw.get("description"),
                added_participants=_participants(raw.get("added_participants")),
                removed_participants=_participants(raw.get("removed_participants")),
                profile_picture=_media(picture) if picture else None,
                raw=raw,
            )
        )


def _metadata(value: dict[str, Any]) -> Metadata:
    meta = _dict(value.get("metadata"))
    return Metadata(
        phone_number_id=str(meta.get("phone_number_id", "")),
        display_phone_number=meta.get("display_phone_number"),
    )


def _participants(items: Any) -> tuple[Participant, ...]:
    return tuple(Participant(_str(p.get("input")), _str(p.get("wa_id"))) for p in _dicts(items))


def _media(raw: dict[str, Any]) -> InboundMedia:
    return InboundMedia(
        id=str(raw.get("id", "")),
        mime_type=raw.get("mime_type"),
        sha256=raw.get("sha256"),
        caption=raw.get("caption"),
        filename=raw.get("filename"),
        animated=raw.get("animated"),
        voice=raw.get("voice"),
    )


def _error(raw: dict[str, Any]) -> ErrorDetail:
    code = raw.get("code")
    return ErrorDetail(
        code=_int(code) if code is not None else None,
        title=raw.get("title"),
        message=raw.get("message"),
        details=_dict(raw.get("error_data")).get("details"),
        href=raw.get("href"),
    )


def contact_card(raw: dict[str, Any]) -> ContactCard:
    """A shared contact card as the same type the builders send."""

    def parts(kind: type, items: Any) -> tuple:
        names = kind.__dataclass_fields__
        return tuple(
            kind(**{k: v for k, v in item.items() if k in names}) for item in _dicts(items)
        )

    name = _dict(raw.get("name"))
    org = _dict(raw.get("org"))
    return ContactCard(
        name=ContactName(**{k: v for k, v in name.items() if k in ContactName.__dataclass_fields__})
        if name.get("formatted_name")
        else ContactName(formatted_name=" ".join(str(v) for v in name.values())),
        phones=parts(ContactPhone, raw.get("phones")),
        emails=parts(ContactEmail, raw.get("emails")),
        urls=parts(ContactUrl, raw.get("urls")),
        addresses=parts(ContactAddress, raw.get("addresses")),
        org=ContactOrg(**{k: v for k, v in org.items() if k in ContactOrg.__dataclass_fields__})
        if org
        else None,
        birthday=raw.get("birthday"),
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _dicts(items: Any) -> list[dict[str, Any]]:
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _items(items: Any) -> list[Any]:
    return items if isinstance(items, list) else []


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: 1e999 decodes to infinity
        return 0
