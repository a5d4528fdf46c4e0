"""Cloud API message objects: validation of what we are asked to send, before Meta sees it."""

from __future__ import annotations

from typing import Any

from app.whatsapp.errors import MessageValidationError
from app.whatsapp.phone import validate_whatsapp_number

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

MAX_TEXT_BODY = 4096
"""Meta's limit on a text message's body, in characters."""


def validate_message(message: Any) -> dict[str, Any]:
    """Check a Cloud API message object and return it with ``messaging_product`` set.

    Raises :class:`MessageValidationError` naming the first field Meta would refuse.
    """
    if not isinstance(message, dict):
        raise MessageValidationError("body", "must be a JSON object")
    product = message.get("messaging_product", "whatsapp")
    if product != "whatsapp":
        raise MessageValidationError("messaging_product", "must be 'whatsapp'")
    to = message.get("to")
    if not isinstance(to, str) or not validate_whatsapp_number(to):
        raise MessageValidationError("to", "must be an international number, digits only")
    kind = message.get("type", "text")
    if kind not in MESSAGE_TYPES:
        raise MessageValidationError("type", f"must be one of {', '.join(sorted(MESSAGE_TYPES))}")
    content = message.get(kind)
    if kind == "contacts":
        if not isinstance(content, list) or not content:
            raise MessageValidationError("contacts", "must be a non-empty list")
    elif not isinstance(content, dict):
        raise MessageValidationError(kind, f"a {kind} message needs a '{kind}' object")
    if kind == "text":
        body = content.get("body")
        if not isinstance(body, str) or not body.strip():
            raise MessageValidationError("text.body", "must be a non-empty string")
        if len(body) > MAX_TEXT_BODY:
            raise MessageValidationError("text.body", f"must be at most {MAX_TEXT_BODY} characters")
    return {**message, "messaging_product": "whatsapp", "type": kind}
