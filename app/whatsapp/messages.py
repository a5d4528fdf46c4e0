"""The rules of Cloud API message objects: what Meta would refuse, caught before Meta sees it.

There is one set of rules. :func:`validate_message` applies it to a raw message object (the send
API answers 422 with it, the simulator answers Meta's error 100 with it), and every builder in
:mod:`app.whatsapp.builders` runs its output through the same function, so a builder can never
produce what ``validate_message`` would refuse. Each refusal is a :class:`MessageValidationError`
whose ``field`` is a dotted path into the message, such as ``interactive.action.buttons[3]``.

The limits are Meta's published ones for Cloud API v23.0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from app.whatsapp.errors import MessageValidationError
from app.whatsapp.ids import is_media_id
from app.whatsapp.phone import validate_user_id, validate_whatsapp_number

MESSAGE_TYPES = frozenset(
    {
        "text",
        "image",
        "audio",
        "video",
        "document",
        "sticker",
        "location",
        "contacts",
        "interactive",
        "template",
        "reaction",
    }
)
"""The ``type`` values of the Cloud API's /messages endpoint."""

MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})
"""Message types whose object is a media reference (``id`` or ``link``)."""

CAPTIONED_MEDIA = frozenset({"image", "video", "document"})
"""Media types that may carry a ``caption`` (audio and stickers may not)."""

INTERACTIVE_TYPES = frozenset(
    {
        "button",
        "list",
        "cta_url",
        "flow",
        "product",
        "product_list",
        "catalog_message",
        "order_details",
        "order_status",
        "location_request_message",
    }
)
"""The ``interactive.type`` values this project builds and checks."""

RECIPIENT_TYPES = frozenset({"individual", "group"})
"""``recipient_type`` values: a person (the default) or a group id."""

MAX_TEXT_BODY = 4096
"""Meta's limit on a text message's body, in characters."""
MAX_CAPTION = 1024
"""Longest media caption."""
MAX_INTERACTIVE_BODY = 1024
"""Longest ``interactive.body.text``."""
MAX_HEADER_TEXT = 60
"""Longest ``interactive.header.text``."""
MAX_FOOTER_TEXT = 60
"""Longest ``interactive.footer.text``."""
MAX_REPLY_BUTTONS = 3
"""Reply buttons per message."""
MAX_BUTTON_TITLE = 20
"""Longest reply button title."""
MAX_BUTTON_ID = 256
"""Longest reply button id."""
MAX_LIST_BUTTON = 20
"""Longest text of the button that opens a list."""
MAX_LIST_SECTIONS = 10
"""Sections per list (and per product list)."""
MAX_LIST_ROWS = 10
"""Rows per list message, counted across all its sections."""
MAX_ROW_ID = 200
"""Longest list row id."""
MAX_ROW_TITLE = 24
"""Longest list row title."""
MAX_ROW_DESCRIPTION = 72
"""Longest list row description."""
MAX_SECTION_TITLE = 24
"""Longest section title."""
MAX_PRODUCTS = 30
"""Products per product-list message, counted across all its sections."""
MAX_CTA_DISPLAY_TEXT = 20
"""Longest call-to-action button text (CTA URL and published flows)."""
MAX_TEMPLATE_NAME = 512
"""Longest template name."""
MAX_TEMPLATE_BUTTON_INDEX = 9
"""Template buttons are numbered 0 to 9."""
MAX_HEADER_PARAMETER_TEXT = 60
"""Longest text parameter of a template header."""
MAX_TEMPLATE_TEXT_PARAMETER = 32768
"""Longest text parameter of a template body."""
MAX_BUTTON_PAYLOAD = 1000
"""Longest quick-reply payload of a template button (the length Meta echoes back)."""

TEMPLATE_COMPONENT_TYPES = frozenset(
    {"header", "body", "button", "footer", "carousel", "limited_time_offer"}
)
"""Template component ``type`` values."""
TEMPLATE_BUTTON_SUB_TYPES = frozenset(
    {"quick_reply", "url", "copy_code", "flow", "catalog", "mpm", "voice_call", "otp"}
)
"""Template button ``sub_type`` values (Meta accepts them in any case: ``CATALOG`` too)."""
TEMPLATE_PARAMETER_TYPES = frozenset(
    {
        "text",
        "currency",
        "date_time",
        "image",
        "video",
        "document",
        "location",
        "payload",
        "action",
        "coupon_code",
        "product",
        "limited_time_offer",
    }
)
"""Template parameter ``type`` values; each carries an object of the same name."""

Check = Callable[[dict[str, Any], str], None]


def validate_message(message: Any) -> dict[str, Any]:
    """Check a Cloud API message object and return it with ``messaging_product`` and ``type`` set.

    ``type`` defaults to ``text``, as Meta's does; a person is addressed by ``to``, ``recipient``
    or both (see :func:`_addressed`). Raises :class:`MessageValidationError` naming
    the first field Meta would refuse.
    """
    if not isinstance(message, dict):
        raise MessageValidationError("body", "must be a JSON object")
    product = message.get("messaging_product", "whatsapp")
    if product != "whatsapp":
        raise MessageValidationError("messaging_product", "must be 'whatsapp'")
    recipient_type = message.get("recipient_type", "individual")
    if not _one_of(recipient_type, RECIPIENT_TYPES):
        raise MessageValidationError("recipient_type", "must be 'individual' or 'group'")
    to = message.get("to")
    if recipient_type == "group":
        _string(to, "to")
    else:
        _addressed(message)
    kind = message.get("type", "text")
    if not _one_of(kind, MESSAGE_TYPES):
        raise MessageValidationError("type", f"must be one of {', '.join(sorted(MESSAGE_TYPES))}")
    if "context" in message:
        context = _object(message["context"], "context")
        _string(context.get("message_id"), "context.message_id")
    content = message.get(kind)
    if kind == "contacts":
        _check_contacts(content)
    else:
        content = _object(content, kind, f"a {kind} message needs a '{kind}' object")
        if kind in MEDIA_TYPES:
            _check_media(content, kind)
        else:
            _CHECKS[kind](content, kind)
    return {**message, "messaging_product": "whatsapp", "type": kind}


def _addressed(message: dict[str, Any]) -> None:
    """A message to a person names them by ``to`` (a phone number in canonical form: digits
    only), by ``recipient`` (a business-scoped user id), or both: Meta then uses ``to``."""
    to, recipient = message.get("to"), message.get("recipient")
    if recipient is not None and not (isinstance(recipient, str) and validate_user_id(recipient)):
        raise MessageValidationError(
            "recipient", "must be a business-scoped user id, such as US.13491208655302741918"
        )
    if to is None and recipient is not None:
        return
    if not isinstance(to, str) or not validate_whatsapp_number(to):
        raise MessageValidationError("to", "must be an international number, digits only")


def validate_read_receipt(receipt: Any) -> dict[str, Any]:
    """Check a read receipt (``status: read`` with a ``message_id``, optional typing indicator)."""
    receipt = _object(receipt, "body", "must be a JSON object")
    if receipt.get("messaging_product") != "whatsapp":
        raise MessageValidationError("messaging_product", "must be 'whatsapp'")
    if receipt.get("status") != "read":
        raise MessageValidationError("status", "must be 'read'")
    _string(receipt.get("message_id"), "message_id")
    if "typing_indicator" in receipt:
        indicator = _object(receipt["typing_indicator"], "typing_indicator")
        if indicator.get("type") != "text":
            raise MessageValidationError("typing_indicator.type", "must be 'text'")
    return receipt


def validate_request(body: Any) -> dict[str, Any]:
    """Check any body of ``POST /{phone_number_id}/messages``: a read receipt or a message."""
    if isinstance(body, dict) and "status" in body and "to" not in body and "recipient" not in body:
        return validate_read_receipt(body)
    if isinstance(body, dict) and "messaging_product" not in body:
        raise MessageValidationError("messaging_product", "is required")
    return validate_message(body)


# -- the rules of each type -------------------------------------------------------------------


def _check_text(text: dict[str, Any], path: str) -> None:
    _string(text.get("body"), f"{path}.body", MAX_TEXT_BODY)
    _optional_bool(text, "preview_url", path)


def _check_reaction(reaction: dict[str, Any], path: str) -> None:
    _string(reaction.get("message_id"), f"{path}.message_id")
    emoji = reaction.get("emoji")
    # An empty emoji removes an earlier reaction; anything longer than a few code points is text.
    if not isinstance(emoji, str) or len(emoji) > 10:
        raise MessageValidationError(f"{path}.emoji", "must be one emoji, or '' to remove")


def _check_media(media: dict[str, Any], path: str) -> None:
    has_id, has_link = "id" in media, "link" in media
    if has_id == has_link:
        raise MessageValidationError(path, "needs exactly one of 'id' or 'link'")
    if has_id:
        if not is_media_id(media["id"]):
            raise MessageValidationError(
                f"{path}.id", "must be a media id (digits, from an upload)"
            )
    else:
        _url(media["link"], f"{path}.link")
    if "caption" in media:
        if path not in CAPTIONED_MEDIA:
            raise MessageValidationError(f"{path}.caption", f"a {path} cannot have a caption")
        _string(media["caption"], f"{path}.caption", MAX_CAPTION)
    if "filename" in media:
        if path != "document":
            raise MessageValidationError(f"{path}.filename", "only documents have a filename")
        _string(media["filename"], f"{path}.filename", 240)


def _check_location(location: dict[str, Any], path: str) -> None:
    _number(location.get("latitude"), f"{path}.latitude", -90, 90)
    _number(location.get("longitude"), f"{path}.longitude", -180, 180)
    for name in ("name", "address"):
        if name in location:
            _string(location[name], f"{path}.{name}", 1000)


def _check_contacts(contacts: Any) -> None:
    if not isinstance(contacts, list) or not contacts:
        raise MessageValidationError("contacts", "must be a non-empty list")
    for i, contact in enumerate(contacts):
        path = f"contacts[{i}]"
        contact = _object(contact, path)
        name = _object(contact.get("name"), f"{path}.name", "a contact needs a name")
        _string(name.get("formatted_name"), f"{path}.name.formatted_name")
        for listed, key in (("phones", "phone"), ("emails", "email"), ("urls", "url")):
            for j, item in enumerate(_list(contact, listed, path)):
                _string(
                    _object(item, f"{path}.{listed}[{j}]").get(key), f"{path}.{listed}[{j}].{key}"
                )
        for j, address in enumerate(_list(contact, "addresses", path)):
            _object(address, f"{path}.addresses[{j}]")
        if "org" in contact:
            _object(contact["org"], f"{path}.org")


def _check_interactive(interactive: dict[str, Any], path: str) -> None:
    kind = interactive.get("type")
    if not _one_of(kind, INTERACTIVE_TYPES):
        raise MessageValidationError(
            f"{path}.type", f"must be one of {', '.join(sorted(INTERACTIVE_TYPES))}"
        )
    action = _object(interactive.get("action"), f"{path}.action", "an interactive needs an action")
    body_required = kind not in ("product",)
    if body_required or "body" in interactive:
        body = _object(interactive.get("body"), f"{path}.body", f"a {kind} message needs a body")
        _string(body.get("text"), f"{path}.body.text", MAX_INTERACTIVE_BODY)
    if "footer" in interactive:
        footer = _object(interactive["footer"], f"{path}.footer")
        _string(footer.get("text"), f"{path}.footer.text", MAX_FOOTER_TEXT)
    _check_interactive_header(interactive, kind, path)
    _INTERACTIVE_ACTIONS[kind](action, f"{path}.action")


_HEADER_TYPES: dict[str, frozenset[str]] = {
    "button": frozenset({"text", "image", "video", "document"}),
    "list": frozenset({"text"}),
    "cta_url": frozenset({"text", "image", "video", "document"}),
    "flow": frozenset({"text", "image", "video", "document"}),
    "product_list": frozenset({"text"}),
    "order_details": frozenset({"image"}),
}
"""Which headers each interactive type allows; types absent here take none."""


def _check_interactive_header(interactive: dict[str, Any], kind: str, path: str) -> None:
    if "header" not in interactive:
        if kind == "product_list":
            raise MessageValidationError(f"{path}.header", "a product list needs a text header")
        return
    allowed = _HEADER_TYPES.get(kind, frozenset())
    if not allowed:
        raise MessageValidationError(f"{path}.header", f"a {kind} message takes no header")
    header = _object(interactive["header"], f"{path}.header")
    header_type = header.get("type")
    if header_type not in allowed:
        raise MessageValidationError(
            f"{path}.header.type", f"must be one of {', '.join(sorted(allowed))}"
        )
    if header_type == "text":
        _string(header.get("text"), f"{path}.header.text", MAX_HEADER_TEXT)
    else:
        _check_media(_object(header.get(header_type), f"{path}.header.{header_type}"), header_type)


def _check_buttons_action(action: dict[str, Any], path: str) -> None:
    buttons = action.get("buttons")
    if not isinstance(buttons, list) or not buttons:
        raise MessageValidationError(f"{path}.buttons", "must be a non-empty list")
    if len(buttons) > MAX_REPLY_BUTTONS:
        raise MessageValidationError(
            f"{path}.buttons[{MAX_REPLY_BUTTONS}]", f"at most {MAX_REPLY_BUTTONS} reply buttons"
        )
    ids: set[str] = set()
    titles: set[str] = set()
    for i, button in enumerate(buttons):
        where = f"{path}.buttons[{i}]"
        button = _object(button, where)
        if button.get("type") != "reply":
            raise MessageValidationError(f"{where}.type", "must be 'reply'")
        reply = _object(button.get("reply"), f"{where}.reply")
        _unique(
            _string(reply.get("id"), f"{where}.reply.id", MAX_BUTTON_ID), ids, f"{where}.reply.id"
        )
        title = _string(reply.get("title"), f"{where}.reply.title", MAX_BUTTON_TITLE)
        _unique(title, titles, f"{where}.reply.title")


def _check_list_action(action: dict[str, Any], path: str) -> None:
    _string(action.get("button"), f"{path}.button", MAX_LIST_BUTTON)
    ids: set[str] = set()
    rows = _section_entries(
        _sections(action, path),
        path,
        "rows",
        MAX_LIST_ROWS,
        f"a list has at most {MAX_LIST_ROWS} rows",
    )
    for row_path, row in rows:
        row = _object(row, row_path)
        _unique(_string(row.get("id"), f"{row_path}.id", MAX_ROW_ID), ids, f"{row_path}.id")
        _string(row.get("title"), f"{row_path}.title", MAX_ROW_TITLE)
        if "description" in row:
            _string(row["description"], f"{row_path}.description", MAX_ROW_DESCRIPTION)


def _check_product_list_action(action: dict[str, Any], path: str) -> None:
    _string(action.get("catalog_id"), f"{path}.catalog_id")
    sections = _sections(action, path, titles_required=True)
    items = _section_entries(
        sections, path, "product_items", MAX_PRODUCTS, f"at most {MAX_PRODUCTS} products"
    )
    for item_path, item in items:
        _string(
            _object(item, item_path).get("product_retailer_id"),
            f"{item_path}.product_retailer_id",
        )


def _section_entries(
    sections: list[Any], path: str, key: str, limit: int, too_many: str
) -> Iterator[tuple[str, Any]]:
    """(path, entry) for every entry under ``key`` in every section, refusing an empty section
    and the first entry past ``limit`` across all sections."""
    seen = 0
    for i, section in enumerate(sections):
        where = f"{path}.sections[{i}]"
        entries = section.get(key)
        if not isinstance(entries, list) or not entries:
            raise MessageValidationError(f"{where}.{key}", "must be a non-empty list")
        for j, entry in enumerate(entries):
            seen += 1
            if seen > limit:
                raise MessageValidationError(f"{where}.{key}[{j}]", too_many)
            yield f"{where}.{key}[{j}]", entry


def _check_product_action(action: dict[str, Any], path: str) -> None:
    _string(action.get("catalog_id"), f"{path}.catalog_id")
    _string(action.get("product_retailer_id"), f"{path}.product_retailer_id")


def _check_cta_url_action(action: dict[str, Any], path: str) -> None:
    _named_action(action, "cta_url", path)
    parameters = _object(action.get("parameters"), f"{path}.parameters")
    _string(parameters.get("display_text"), f"{path}.parameters.display_text", MAX_CTA_DISPLAY_TEXT)
    _url(parameters.get("url"), f"{path}.parameters.url")


def _check_flow_action(action: dict[str, Any], path: str) -> None:
    _named_action(action, "flow", path)
    where = f"{path}.parameters"
    parameters = _object(action.get("parameters"), where)
    if parameters.get("flow_message_version") != "3":
        raise MessageValidationError(f"{where}.flow_message_version", "must be '3'")
    if ("flow_id" in parameters) == ("flow_name" in parameters):
        raise MessageValidationError(where, "needs exactly one of 'flow_id' or 'flow_name'")
    key = "flow_id" if "flow_id" in parameters else "flow_name"
    _string(parameters[key], f"{where}.{key}")
    mode = parameters.get("mode", "published")
    if mode not in ("draft", "published"):
        raise MessageValidationError(f"{where}.mode", "must be 'draft' or 'published'")
    # A draft flow's button is not shown (Meta's own draft examples exceed the limit).
    limit = MAX_CTA_DISPLAY_TEXT if mode == "published" else None
    _string(parameters.get("flow_cta"), f"{where}.flow_cta", limit)
    flow_action = parameters.get("flow_action", "navigate")
    if flow_action not in ("navigate", "data_exchange"):
        raise MessageValidationError(
            f"{where}.flow_action", "must be 'navigate' or 'data_exchange'"
        )
    if "flow_action_payload" in parameters:
        if flow_action != "navigate":
            raise MessageValidationError(
                f"{where}.flow_action_payload", "only a 'navigate' flow takes a payload"
            )
        payload = _object(parameters["flow_action_payload"], f"{where}.flow_action_payload")
        _string(payload.get("screen"), f"{where}.flow_action_payload.screen")
    if "flow_token" in parameters:
        _string(parameters["flow_token"], f"{where}.flow_token")


def _check_catalog_action(action: dict[str, Any], path: str) -> None:
    _named_action(action, "catalog_message", path)
    if "parameters" in action:
        parameters = _object(action["parameters"], f"{path}.parameters")
        if "thumbnail_product_retailer_id" in parameters:
            _string(
                parameters["thumbnail_product_retailer_id"],
                f"{path}.parameters.thumbnail_product_retailer_id",
            )


def _check_order_details_action(action: dict[str, Any], path: str) -> None:
    _named_action(action, "review_and_pay", path)
    where = f"{path}.parameters"
    parameters = _object(action.get("parameters"), where)
    for name in ("reference_id", "type", "currency"):
        _string(parameters.get(name), f"{where}.{name}")
    _amount(parameters.get("total_amount"), f"{where}.total_amount")
    order = _object(parameters.get("order"), f"{where}.order")
    _string(order.get("status"), f"{where}.order.status")
    items = order.get("items")
    if not isinstance(items, list) or not items:
        raise MessageValidationError(f"{where}.order.items", "must be a non-empty list")
    for i, item in enumerate(items):
        item_path = f"{where}.order.items[{i}]"
        item = _object(item, item_path)
        _string(item.get("name"), f"{item_path}.name")
        _amount(item.get("amount"), f"{item_path}.amount")
        if not isinstance(item.get("quantity"), int) or item["quantity"] < 1:
            raise MessageValidationError(f"{item_path}.quantity", "must be a positive integer")
    _amount(order.get("subtotal"), f"{where}.order.subtotal")


def _check_order_status_action(action: dict[str, Any], path: str) -> None:
    _named_action(action, "review_order", path)
    parameters = _object(action.get("parameters"), f"{path}.parameters")
    _string(parameters.get("reference_id"), f"{path}.parameters.reference_id")
    order = _object(parameters.get("order"), f"{path}.parameters.order")
    _string(order.get("status"), f"{path}.parameters.order.status")


def _check_location_request_action(action: dict[str, Any], path: str) -> None:
    _named_action(action, "send_location", path)


_INTERACTIVE_ACTIONS: dict[str, Check] = {
    "button": _check_buttons_action,
    "list": _check_list_action,
    "cta_url": _check_cta_url_action,
    "flow": _check_flow_action,
    "product": _check_product_action,
    "product_list": _check_product_list_action,
    "catalog_message": _check_catalog_action,
    "order_details": _check_order_details_action,
    "order_status": _check_order_status_action,
    "location_request_message": _check_location_request_action,
}


def _check_template(template: dict[str, Any], path: str) -> None:
    _string(template.get("name"), f"{path}.name", MAX_TEMPLATE_NAME)
    language = _object(template.get("language"), f"{path}.language", "a template needs a language")
    _string(language.get("code"), f"{path}.language.code")
    if "policy" in language and language["policy"] != "deterministic":
        raise MessageValidationError(f"{path}.language.policy", "must be 'deterministic'")
    components = template.get("components", [])
    if not isinstance(components, list):
        raise MessageValidationError(f"{path}.components", "must be a list")
    indexes: set[int] = set()
    for i, component in enumerate(components):
        where = f"{path}.components[{i}]"
        component = _object(component, where)
        kind = component.get("type")
        if not isinstance(kind, str) or kind.lower() not in TEMPLATE_COMPONENT_TYPES:
            raise MessageValidationError(
                f"{where}.type", f"must be one of {', '.join(sorted(TEMPLATE_COMPONENT_TYPES))}"
            )
        kind = kind.lower()
        if kind == "button":
            sub_type = component.get("sub_type")
            if not isinstance(sub_type, str) or sub_type.lower() not in TEMPLATE_BUTTON_SUB_TYPES:
                raise MessageValidationError(
                    f"{where}.sub_type",
                    f"must be one of {', '.join(sorted(TEMPLATE_BUTTON_SUB_TYPES))}",
                )
            _unique(
                _button_index(component.get("index"), f"{where}.index"), indexes, f"{where}.index"
            )
        parameters = component.get("parameters", [])
        if not isinstance(parameters, list):
            raise MessageValidationError(f"{where}.parameters", "must be a list")
        for j, parameter in enumerate(parameters):
            _check_template_parameter(parameter, kind, f"{where}.parameters[{j}]")


def _check_template_parameter(parameter: Any, component: str, path: str) -> None:
    parameter = _object(parameter, path)
    kind = parameter.get("type")
    if not _one_of(kind, TEMPLATE_PARAMETER_TYPES):
        raise MessageValidationError(
            f"{path}.type", f"must be one of {', '.join(sorted(TEMPLATE_PARAMETER_TYPES))}"
        )
    if kind not in parameter:
        raise MessageValidationError(f"{path}.{kind}", f"a {kind} parameter needs '{kind}'")
    value = parameter[kind]
    if kind == "text":
        limit = MAX_HEADER_PARAMETER_TEXT if component == "header" else MAX_TEMPLATE_TEXT_PARAMETER
        # Meta's own quick-reply examples send booleans here; it accepts any scalar.
        if isinstance(value, bool):
            return
        _string(value, f"{path}.text", limit)
    elif kind == "payload":
        _string(value, f"{path}.payload", MAX_BUTTON_PAYLOAD)
    elif kind == "currency":
        currency = _object(value, f"{path}.currency")
        _string(currency.get("fallback_value"), f"{path}.currency.fallback_value")
        _string(currency.get("code"), f"{path}.currency.code")
        if not isinstance(currency.get("amount_1000"), int):
            raise MessageValidationError(f"{path}.currency.amount_1000", "must be an integer")
    elif kind == "date_time":
        date_time = _object(value, f"{path}.date_time")
        _string(date_time.get("fallback_value"), f"{path}.date_time.fallback_value")
    elif kind in ("image", "video", "document"):
        _check_media(_object(value, f"{path}.{kind}"), kind)
    elif kind == "location":
        _check_location(_object(value, f"{path}.location"), f"{path}.location")
    elif kind in ("coupon_code",):
        _string(value, f"{path}.{kind}", 15)
    else:
        _object(value, f"{path}.{kind}")


_CHECKS: dict[str, Check] = {
    "text": _check_text,
    "reaction": _check_reaction,
    "location": _check_location,
    "interactive": _check_interactive,
    "template": _check_template,
}


# -- small checks -----------------------------------------------------------------------------


def _object(value: Any, path: str, message: str = "must be an object") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MessageValidationError(path, message)
    return value


def _list(container: dict[str, Any], name: str, path: str) -> list[Any]:
    value = container.get(name, [])
    if not isinstance(value, list):
        raise MessageValidationError(f"{path}.{name}", "must be a list")
    return value


def _string(value: Any, path: str, limit: int | None = None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MessageValidationError(path, "must be a non-empty string")
    if limit is not None and len(value) > limit:
        raise MessageValidationError(path, f"must be at most {limit} characters")
    return value


def _optional_bool(container: dict[str, Any], name: str, path: str) -> None:
    if name in container and not isinstance(container[name], bool):
        raise MessageValidationError(f"{path}.{name}", "must be true or false")


def _number(value: Any, path: str, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise MessageValidationError(path, f"must be a number from {low} to {high}")


def _url(value: Any, path: str) -> None:
    text = _string(value, path, 2000)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise MessageValidationError(path, "must be an http(s) URL")


def _unique(value: Any, seen: set, path: str) -> None:
    if value in seen:
        raise MessageValidationError(path, f"{value!r} is used twice")
    seen.add(value)


def _sections(action: dict[str, Any], path: str, titles_required: bool = False) -> list[dict]:
    sections = action.get("sections")
    if not isinstance(sections, list) or not sections:
        raise MessageValidationError(f"{path}.sections", "must be a non-empty list")
    if len(sections) > MAX_LIST_SECTIONS:
        raise MessageValidationError(
            f"{path}.sections[{MAX_LIST_SECTIONS}]", f"at most {MAX_LIST_SECTIONS} sections"
        )
    for i, section in enumerate(sections):
        section = _object(section, f"{path}.sections[{i}]")
        # One section may go untitled; several need titles to tell them apart.
        if titles_required or len(sections) > 1 or "title" in section:
            _string(section.get("title"), f"{path}.sections[{i}].title", MAX_SECTION_TITLE)
    return sections


def _named_action(action: dict[str, Any], name: str, path: str) -> None:
    if action.get("name") != name:
        raise MessageValidationError(f"{path}.name", f"must be '{name}'")


def _amount(value: Any, path: str) -> None:
    amount = _object(value, path)
    for key in ("value", "offset"):
        if isinstance(amount.get(key), bool) or not isinstance(amount.get(key), int):
            raise MessageValidationError(f"{path}.{key}", "must be an integer")


def _button_index(value: Any, path: str) -> int:
    # Meta accepts the position as a number or as a digit string; its examples use both.
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MessageValidationError(path, "must be a button position (0 to 9)")
    if not 0 <= value <= MAX_TEMPLATE_BUTTON_INDEX:
        raise MessageValidationError(path, f"must be from 0 to {MAX_TEMPLATE_BUTTON_INDEX}")
    return value


def _one_of(value: Any, allowed: frozenset[str]) -> bool:
    """Whether ``value`` is one of the ``allowed`` names (a list or object never is)."""
    return isinstance(value, str) and value in allowed
