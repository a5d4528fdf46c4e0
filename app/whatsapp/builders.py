"""Typed builders for every message the Cloud API sends, one function per message type.

Each builder returns the message object as a plain dict, ready for
:meth:`app.whatsapp.client.GraphClient.send_message` (or for the send API, or a Redis record),
and runs it through :func:`app.whatsapp.messages.validate_message` first: whatever Meta would
refuse (a fourth reply button, an eleventh list row, a body over its length) raises
:class:`~app.whatsapp.errors.MessageValidationError` naming the field, before any request.

Options every message builder takes: ``reply_to`` (the ``wamid`` being answered, sent as
``context.message_id``) and ``recipient_type`` (``"individual"``, or ``"group"`` with a group id as
``to``; left out unless given, as Meta's default is individual). The first argument, ``to``, is a
phone number or a customer's business-scoped user id (``US.13491208655302741918``), which the
message then carries as ``recipient``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.whatsapp.messages import validate_message, validate_read_receipt
from app.whatsapp.phone import validate_user_id

Message = dict[str, Any]


# -- parts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplyButton:
    """A quick-reply button: ``id`` comes back in the customer's ``button_reply``."""

    id: str
    title: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": "reply", "reply": {"id": self.id, "title": self.title}}


@dataclass(frozen=True)
class ListRow:
    """One choice of a list message."""

    id: str
    title: str
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _drop_none({"id": self.id, "title": self.title, "description": self.description})


@dataclass(frozen=True)
class ListSection:
    """A titled group of rows (the title may be left out when there is only one section)."""

    rows: Sequence[ListRow]
    title: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _drop_none({"title": self.title, "rows": [row.to_dict() for row in self.rows]})


@dataclass(frozen=True)
class ProductSection:
    """A titled group of catalog products, by their retailer ids."""

    title: str
    product_retailer_ids: Sequence[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "product_items": [{"product_retailer_id": p} for p in self.product_retailer_ids],
        }


@dataclass(frozen=True)
class Media:
    """A media reference: an uploaded media ``id`` or a public ``link`` (exactly one)."""

    id: str | None = None
    link: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _drop_none({"id": self.id, "link": self.link})


@dataclass(frozen=True)
class Header:
    """The header of an interactive message: text, or an image, video or document."""

    type: str
    text: str | None = None
    media: Media | None = None

    @classmethod
    def of_text(cls, text: str) -> Header:
        return cls("text", text=text)

    @classmethod
    def of_media(cls, kind: str, *, id: str | None = None, link: str | None = None) -> Header:
        """An ``image``, ``video`` or ``document`` header."""
        return cls(kind, media=Media(id=id, link=link))

    def to_dict(self) -> dict[str, Any]:
        if self.type == "text":
            return {"type": "text", "text": self.text}
        return {"type": self.type, self.type: self.media.to_dict() if self.media else {}}


@dataclass(frozen=True)
class ContactName:
    """A shared contact's name; ``formatted_name`` is required by Meta."""

    formatted_name: str
    first_name: str | None = None
    last_name: str | None = None
    middle_name: str | None = None
    prefix: str | None = None
    suffix: str | None = None


@dataclass(frozen=True)
class ContactPhone:
    phone: str
    type: str | None = None
    wa_id: str | None = None


@dataclass(frozen=True)
class ContactEmail:
    email: str
    type: str | None = None


@dataclass(frozen=True)
class ContactUrl:
    url: str
    type: str | None = None


@dataclass(frozen=True)
class ContactAddress:
    street: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    country_code: str | None = None
    type: str | None = None


@dataclass(frozen=True)
class ContactOrg:
    company: str | None = None
    department: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class ContactCard:
    """A contact card to share (the same shape customers share with us)."""

    name: ContactName
    phones: Sequence[ContactPhone] = ()
    emails: Sequence[ContactEmail] = ()
    urls: Sequence[ContactUrl] = ()
    addresses: Sequence[ContactAddress] = ()
    org: ContactOrg | None = None
    birthday: str | None = None

    def to_dict(self) -> dict[str, Any]:
        card: dict[str, Any] = {"name": _fields(self.name)}
        for name in ("addresses", "emails", "phones", "urls"):
            items = getattr(self, name)
            if items:
                card[name] = [_fields(item) for item in items]
        if self.org is not None:
            card["org"] = _fields(self.org)
        if self.birthday is not None:
            card["birthday"] = self.birthday
        return card


# -- template components ----------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateComponent:
    """One ``template.components[]`` item: header, body or button, with its parameters."""

    type: str
    parameters: Sequence[dict[str, Any]] = ()
    sub_type: str | None = None
    index: int | str | None = None

    def to_dict(self) -> dict[str, Any]:
        component: dict[str, Any] = {"type": self.type}
        if self.sub_type is not None:
            component["sub_type"] = self.sub_type
        if self.index is not None:
            component["index"] = self.index
        component["parameters"] = list(self.parameters)
        return component


def header_component(*parameters: dict[str, Any]) -> TemplateComponent:
    """The values of a template's header variables (text, or one media parameter)."""
    return TemplateComponent("header", parameters)


def body_component(*parameters: dict[str, Any]) -> TemplateComponent:
    """The values of a template's body variables, in order."""
    return TemplateComponent("body", parameters)


def button_component(
    sub_type: str, index: int | str, *parameters: dict[str, Any]
) -> TemplateComponent:
    """The value for template button ``index`` (0-9, as a number or digit string) of ``sub_type``
    (``quick_reply``, ``url``, ``copy_code``, ``flow``, ``catalog``, ...)."""
    return TemplateComponent("button", parameters, sub_type=sub_type, index=index)


def text_parameter(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def payload_parameter(payload: str) -> dict[str, Any]:
    """What a quick-reply button sends back in the customer's ``button.payload``."""
    return {"type": "payload", "payload": payload}


def currency_parameter(fallback_value: str, code: str, amount_1000: int) -> dict[str, Any]:
    """A localised amount: ``amount_1000`` is the amount times 1000 in currency ``code``."""
    return {
        "type": "currency",
        "currency": {"fallback_value": fallback_value, "code": code, "amount_1000": amount_1000},
    }


def date_time_parameter(
    fallback_value: str,
    *,
    calendar: str | None = None,
    year: int | None = None,
    month: int | None = None,
    day_of_month: int | None = None,
    day_of_week: int | None = None,
    hour: int | None = None,
    minute: int | None = None,
) -> dict[str, Any]:
    """A localised date and time; ``fallback_value`` is shown where localisation fails."""
    value = _drop_none(
        {
            "fallback_value": fallback_value,
            "calendar": calendar,
            "year": year,
            "month": month,
            "day_of_month": day_of_month,
            "day_of_week": day_of_week,
            "hour": hour,
            "minute": minute,
        }
    )
    return {"type": "date_time", "date_time": value}


def media_parameter(kind: str, *, id: str | None = None, link: str | None = None) -> dict[str, Any]:
    """An ``image``, ``video`` or ``document`` header parameter."""
    return {"type": kind, kind: Media(id=id, link=link).to_dict()}


def action_parameter(action: dict[str, Any]) -> dict[str, Any]:
    """A button's ``action`` (a catalog thumbnail, a flow token and its data)."""
    return {"type": "action", "action": action}


# -- messages ---------------------------------------------------------------------------------


def text(
    to: str,
    body: str,
    *,
    preview_url: bool | None = None,
    reply_to: str | None = None,
    recipient_type: str | None = None,
) -> Message:
    """A text message; ``preview_url`` asks WhatsApp to render a preview of its first link."""
    return _message(
        to,
        "text",
        _drop_none({"body": body, "preview_url": preview_url}),
        reply_to,
        recipient_type,
    )


def reaction(to: str, message_id: str, emoji: str, *, recipient_type: str | None = None) -> Message:
    """React with ``emoji`` to message ``message_id``; an empty emoji removes the reaction."""
    return _message(
        to, "reaction", {"message_id": message_id, "emoji": emoji}, None, recipient_type
    )


def image(
    to: str,
    *,
    id: str | None = None,
    link: str | None = None,
    caption: str | None = None,
    reply_to: str | None = None,
    recipient_type: str | None = None,
) -> Message:
    """An image (JPEG or PNG) by uploaded media ``id`` or public ``link``."""
    return _media("image", to, id, link, caption, None, reply_to, recipient_type)


def video(
    to: str,
    *,
    id: str | None = None,
    link: str | None = None,
    caption: str | None = None,
    reply_to: str | None = None,
    recipient_type: str | None = None,
) -> Message:
    """A video (MP4 or 3GPP) by media ``id`` or ``link``."""
    return _media("video", to, id, link, caption, None, reply_to, recipient_type)


def document(
    to: str,
    *,
    id: str | None = None,
    link: str | None = None,
    caption: str | None = None,
    filename: str | None = None,
    reply_to: str | None = None,
    recipient_type: str | None = None,
) -> Message:
    """A document by media ``id`` or ``link``; ``filename`` is what the customer sees."""
    return _media("document", to, id, link, caption, filename, reply_to, recipient_type)


def audio(
    to: str,
    *,
    id: str | None = None,
    link: str | None = None,
    reply_to: str | None = None,
    recipient_type: str | None = None,
) -> Message:
    """An audio message by media ``id`` or ``link`` (no caption: Meta refuses one)."""
    return _media("audio", to, id, link, None, None, reply_to, recipient_type)


def sticker(
    to: str,
    *,
    id: str | None = None,
    link: str | None = None,
    reply_to: str | None = None,
    recipient_type: str | None = None,
) -> Message:
    """A WebP sticker by media ``id`` or ``link`` (no caption)."""
    return _media("sticker", to, id, link, None, None, reply_to, recipient_type)


def location(
    to: str,
    latitude: float,
    longitude: float,
    *,
    name: str | None = None,
    address: str | None = None,
    reply_to: str | None = None,
    recipient_type: str | None = None,
) -> Message:
    """A map pin, optionally named and with its address."""
    content = _drop_none(
        {"latitude": latitude, "longitude": longitude, "name": name, "address": address}
    )
    return _message(to, "location", content, reply_to, recipient_type)


def contacts(
    to: str,
    cards: Sequence[ContactCard],
    *,
    reply_to: str | None = None,
    recipient_type: str | None = None,
) -> Message:
    """One or more contact cards."""
    return _message(to, "contacts", [card.to_dict() for card in cards], reply_to, recipient_type)


def reply_buttons(
    to: str,
    body: str,
    buttons: Sequence[ReplyButton],
    *,
    header: Header | None = None,
    footer: str | None = None,
    reply_to: str | None = None,
    recipient_type: str | None = None,
) -> Message:
    """Up to three quick-reply buttons under ``body``."""
    action = {"buttons": [button.to_dict() for button in buttons]}
    return _interactive(to, "button", action, body, header, footer, reply_to, recipient_type)


def list_message(
    to: str,
    body: str,
    button: str,
    sections: Sequence[ListSection],
    *,
    header: str | None = None,
    footer: str | None = None,
    reply_to: str | None = None,
    recipient_type: str | None = None,
) -> Message:
    """A menu of up to ten rows in up to ten sections, opened by ``button``."""
    action = {"button": button, "sections": [section.to_dict() for section in sections]}
    return _interactive(
        to,
        "list",
        action,
        body,
        Header.of_text(header) if header is not None else None,
        footer,
        reply_to,
        recipient_type,
    )


def cta_url(
    to: str,
    body: str,
    display_text: str,
    url: str,
    *,
    header: Header | None = None,
    footer: str | None = None,
    reply_to: str | None = None,
    recipient_type: str | None = None,
) -> Message:
    """A button that opens ``url``, labelled ``display_text``."""
    action = {"name": "cta_url", "parameters": {"display_text": display_text, "url": url}}
    return _interactive(to, "cta_url", action, body, header, footer, reply_to, recipient_type)


def flow(
    to: str,
    body: str,
    flow_cta: str,
    *,
    flow_id: str | None = None,
    flow_name: str | None = None,
    flow_token: str | None = None,
    flow_action: str | None = None,
    screen: str | None = None,
    data: dict[str, Any] | None = None,
    mode: str | None = None,
    header: Header | None = None,
    footer: str | None = None,
    reply_to: str | None = None,
    recipient_type: str | None = None,
) -> Message:
    """A WhatsApp Flow, by ``flow_id`` or ``flow_name``, opened on ``screen`` with ``data``."""
    payload = None
    if screen is not None or data is not None:
        payload = _drop_none({"screen": screen, "data": data})
    parameters = _drop_none(
        {
            "flow_message_version": "3",
            "flow_token": flow_token,
            "flow_id": flow_id,
            "flow_name": flow_name,
            "flow_cta": flow_cta,
            "flow_action": flow_action,
            "flow_action_payload": payload,
            "mode": mode,
        }
    )
    action = {"name": "flow", "parameters": parameters}
    return _interactive(to, "flow", action, body, header, footer, reply_to, recipient_type)


def product(
    to: str,
    catalog_id: str,
    product_retailer_id: str,
    *,
    body: str | None = None,
    footer: str | None = None,
    reply_to: str | None = None,
    recipient_type: str | None = None,
) -> Message:
    """One product of a catalog."""
    action = {"catalog_id": catalog_id, "product_retailer_id": product_retailer_id}
    return _interactive(to, "product", action, body, None, footer, reply_to, recipient_type)


def product_list(
    to: str,
    header: str,
    body: str,
    catalog_id: str,
    sections: Sequence[ProductSection],
    *,
    footer: str | None = None,
    reply_to: str | None = None,
    recipient_type: str | None = None,
) -> Message:
    """Up to thirty catalog products in up to ten titled sections."""
    action = {"catalog_id": catalog_id, "sections": [s.to_dict() for s in sections]}
    return _interactive(
        to, "product_list", action, body, Header.of_text(header), footer, reply_to, recipient_type
    )


def catalog(
    to: str,
    body: str,
    *,
    thumbnail_product_retailer_id: str | None = None,
    footer: str | None = None,
    reply_to: str | None = None,
    recipient_type: str | None = None,
) -> Message:
    """A button that opens the business's whole catalog."""
    action: dict[str, Any] = {"name": "catalog_message"}
    if thumbnail_product_retailer_id is not None:
        action["parameters"] = {"thumbnail_product_retailer_id": thumbnail_product_retailer_id}
    return _interactive(to, "catalog_message", action, body, None, footer, reply_to, recipient_type)


def order_details(
    to: str,
    body: str,
    parameters: dict[str, Any],
    *,
    header: Header | None = None,
    footer: str | None = None,
    reply_to: str | None = None,
    recipient_type: str | None = None,
) -> Message:
    """An order to review and pay (``reference_id``, ``type``, ``currency``, ``total_amount``,
    ``order`` with its items, and the payment settings)."""
    action = {"name": "review_and_pay", "parameters": parameters}
    return _interactive(to, "order_details", action, body, header, footer, reply_to, recipient_type)


def order_status(
    to: str,
    body: str,
    reference_id: str,
    status: str,
    *,
    description: str | None = None,
    footer: str | None = None,
    reply_to: str | None = None,
    recipient_type: str | None = None,
) -> Message:
    """The new ``status`` of the order ``reference_id`` sent earlier with :func:`order_details`."""
    parameters = {
        "reference_id": reference_id,
        "order": _drop_none({"status": status, "description": description}),
    }
    action = {"name": "review_order", "parameters": parameters}
    return _interactive(to, "order_status", action, body, None, footer, reply_to, recipient_type)


def location_request(
    to: str, body: str, *, reply_to: str | None = None, recipient_type: str | None = None
) -> Message:
    """Ask the customer to share their location."""
    action = {"name": "send_location"}
    return _interactive(
        to, "location_request_message", action, body, None, None, reply_to, recipient_type
    )


def template(
    to: str,
    name: str,
    language: str,
    *,
    components: Sequence[TemplateComponent] = (),
    language_policy: str | None = None,
    reply_to: str | None = None,
    recipient_type: str | None = None,
) -> Message:
    """An approved template ``name`` in ``language`` (like ``en_US``) with its variables.

    Templates are the only messages Meta delivers outside the 24-hour customer-service window.
    """
    content: dict[str, Any] = {
        "name": name,
        "language": _drop_none({"code": language, "policy": language_policy}),
    }
    if components:
        content["components"] = [component.to_dict() for component in components]
    return _message(to, "template", content, reply_to, recipient_type)


def read_receipt(message_id: str, *, typing_indicator: bool = False) -> Message:
    """Mark inbound ``message_id`` read; with ``typing_indicator`` the customer sees us typing
    (until we answer, or for up to 25 seconds)."""
    receipt: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": message_id,
    }
    if typing_indicator:
        receipt["typing_indicator"] = {"type": "text"}
    return validate_read_receipt(receipt)


# -- assembly ---------------------------------------------------------------------------------


def _message(
    to: str, kind: str, content: Any, reply_to: str | None, recipient_type: str | None
) -> Message:
    message: dict[str, Any] = {"messaging_product": "whatsapp"}
    if recipient_type is not None:
        message["recipient_type"] = recipient_type
    # A business-scoped user id addresses the customer by ``recipient``, a phone by ``to``.
    by_user_id = recipient_type != "group" and validate_user_id(to)
    message["recipient" if by_user_id else "to"] = to
    if reply_to is not None:
        message["context"] = {"message_id": reply_to}
    message["type"] = kind
    message[kind] = content
    return validate_message(message)


def _media(
    kind: str,
    to: str,
    id: str | None,
    link: str | None,
    caption: str | None,
    filename: str | None,
    reply_to: str | None,
    recipient_type: str | None,
) -> Message:
    content = {
        **Media(id=id, link=link).to_dict(),
        **_drop_none({"caption": caption, "filename": filename}),
    }
    return _message(to, kind, content, reply_to, recipient_type)


def _interactive(
    to: str,
    kind: str,
    action: dict[str, Any],
    body: str | None,
    header: Header | None,
    footer: str | None,
    reply_to: str | None,
    recipient_type: str | None,
) -> Message:
    content: dict[str, Any] = {"type": kind}
    if header is not None:
        content["header"] = header.to_dict()
    if body is not None:
        content["body"] = {"text": body}
    if footer is not None:
        content["footer"] = {"text": footer}
    content["action"] = action
    return _message(to, "interactive", content, reply_to, recipient_type)


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _fields(part: Any) -> dict[str, Any]:
    return _drop_none({name: getattr(part, name) for name in part.__dataclass_fields__})
