"""Meta's shapes, as the simulator answers and notifies: error bodies, ids, webhook payloads."""

from __future__ import annotations

import base64
import os
import time
from typing import Any

from app.whatsapp.webhook import OBJECT_WHATSAPP

ERROR_DOCS = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"

ERROR_CATALOGUE: dict[int, tuple[int, str, str]] = {
    0: (401, "OAuthException", "AuthException"),
    1: (500, "OAuthException", "API Unknown"),
    2: (503, "OAuthException", "API Service"),
    4: (429, "OAuthException", "API Too Many Calls"),
    10: (403, "OAuthException", "Permission Denied"),
    100: (400, "OAuthException", "Invalid parameter"),
    190: (401, "OAuthException", "Access token has expired"),
    200: (403, "OAuthException", "API Permission"),
    368: (403, "OAuthException", "Temporarily blocked for policies violations"),
    80007: (429, "OAuthException", "Rate limit issues"),
    130429: (429, "OAuthException", "Rate limit hit"),
    130472: (400, "OAuthException", "User's number is part of an experiment"),
    131000: (500, "OAuthException", "Something went wrong"),
    131005: (403, "OAuthException", "Access denied"),
    131008: (400, "OAuthException", "Required parameter is missing"),
    131009: (400, "OAuthException", "Parameter value is not valid"),
    131016: (503, "OAuthException", "Service unavailable"),
    131021: (400, "OAuthException", "Recipient cannot be sender"),
    131026: (400, "OAuthException", "Message undeliverable"),
    131031: (403, "OAuthException", "Account has been locked"),
    131042: (400, "OAuthException", "Business eligibility payment issue"),
    131047: (400, "OAuthException", "Re-engagement message"),
    131051: (400, "OAuthException", "Unsupported message type"),
    131052: (400, "OAuthException", "Media download error"),
    131053: (400, "OAuthException", "Media upload error"),
    131056: (400, "OAuthException", "(Business Account, Consumer Account) pair rate limit hit"),
    131057: (400, "OAuthException", "Account in maintenance mode"),
    132000: (400, "OAuthException", "Number of parameters does not match the expected number"),
    132001: (404, "OAuthException", "Template name does not exist in the translation"),
    132005: (400, "OAuthException", "Translated text too long"),
    132007: (400, "OAuthException", "Template format character policy violated"),
    132012: (
        400,
        "OAuthException",
        "Parameter format does not match format in the created template",
    ),
    132015: (400, "OAuthException", "Template is Paused"),
    132016: (400, "OAuthException", "Template is Disabled"),
    133010: (400, "OAuthException", "Phone number not registered"),
}
"""Graph error code to (HTTP status, type, title) as Meta answers them."""


def error_title(code: int) -> str:
    return ERROR_CATALOGUE.get(code, (400, "OAuthException", "Error"))[2]


def error_body(code: int, details: str | None = None, subcode: int | None = None) -> dict[str, Any]:
    """Meta's ``{"error": {...}}`` answer for ``code``."""
    error: dict[str, Any] = {
        "message": f"(#{code}) {error_title(code)}",
        "type": ERROR_CATALOGUE.get(code, (400, "OAuthException", ""))[1],
        "code": code,
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    error["fbtrace_id"] = "A" + base64.urlsafe_b64encode(os.urandom(15)).decode()
    return {"error": error}


def error_status(code: int) -> int:
    """The HTTP status Meta answers error ``code`` with."""
    return ERROR_CATALOGUE.get(code, (400, "", ""))[0]


def status_error(code: int, details: str | None = None) -> dict[str, Any]:
    """One item of a ``failed`` status's ``errors[]``."""
    title = error_title(code)
    return {
        "code": code,
        "title": title,
        "message": title,
        "error_data": {"details": details or title},
        "href": ERROR_DOCS,
    }


def new_wamid() -> str:
    """A fresh message id in Meta's form."""
    return "wamid." + base64.b64encode(b"\x15\x02\x00\x11\x18" + os.urandom(24)).decode()


def envelope(
    business_account_id: str,
    phone_number_id: str,
    display_phone_number: str,
    value: dict[str, Any],
    field: str = "messages",
) -> dict[str, Any]:
    """Wrap a change ``value`` in Meta's webhook envelope for one business number."""
    return {
        "object": OBJECT_WHATSAPP,
        "entry": [
            {
                "id": business_account_id,
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": display_phone_number,
                                "phone_number_id": phone_number_id,
                            },
                            **value,
                        },
                        "field": field,
                    }
                ],
            }
        ],
    }


def status_item(
    wamid: str,
    recipient: str | None,
    status: str,
    category: str = "service",
    errors: list[dict[str, Any]] | None = None,
    recipient_user_id: str | None = None,
    recipient_parent_user_id: str | None = None,
) -> dict[str, Any]:
    """One ``statuses[]`` item: message ``wamid`` reached ``status``. The customer is named by
    number (``recipient``, left out when hidden) and by business-scoped user id."""
    item: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(int(time.time()))}
    if recipient:
        item["recipient_id"] = recipient
    if recipient_user_id:
        item["recipient_user_id"] = recipient_user_id
    if recipient_parent_user_id:
        item["recipient_parent_user_id"] = recipient_parent_user_id
    if status in ("sent", "delivered"):
        item["pricing"] = {
            "billable": category != "service",
            "pricing_model": "PMP",
            "category": category,
            "type": "regular" if category != "service" else "free_customer_service",
        }
    if errors:
        item["errors"] = errors
    return item
