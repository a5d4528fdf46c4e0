"""Webhooks of customers known by business-scoped user id, written from the field tables of Meta's
documentation (``contacts[].user_id``, ``contacts[].parent_user_id``, ``contacts[].profile.username``,
``messages[].from_user_id``, ``statuses[].recipient_user_id``): a customer who hides their phone
comes with no ``wa_id`` and no ``from`` at all."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.stack import TEST_CREDENTIALS, envelope

NUMBER = TEST_CREDENTIALS["WHATSAPP_PHONE_NUMBER_ID"]
USER_ID = "CO.13491208655302741918"
PARENT_USER_ID = "CO.ENT.11815799212886844830"


def contact(
    *,
    wa_id: str | None = None,
    user_id: str | None = USER_ID,
    parent_user_id: str | None = None,
    username: str | None = None,
    name: str = "Ana",
) -> dict[str, Any]:
    """A ``contacts[]`` item: only the fields given (Meta omits ``wa_id`` when it is hidden)."""
    profile: dict[str, Any] = {"name": name}
    if username:
        profile["username"] = username
    item: dict[str, Any] = {"profile": profile}
    for field, value in (
        ("wa_id", wa_id),
        ("user_id", user_id),
        ("parent_user_id", parent_user_id),
    ):
        if value:
            item[field] = value
    return item


def text_from(
    text: str,
    *,
    wa_id: str | None = None,
    user_id: str | None = USER_ID,
    parent_user_id: str | None = None,
    username: str | None = None,
    wamid: str | None = None,
) -> dict[str, Any]:
    """A text message from a customer; with no ``wa_id`` the message has no ``from``."""
    message: dict[str, Any] = {
        "id": wamid or f"wamid.bsuid.{uuid.uuid4().hex}",
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": text},
    }
    if wa_id:
        message["from"] = wa_id
    if user_id:
        message["from_user_id"] = user_id
    if parent_user_id:
        message["from_parent_user_id"] = parent_user_id
    return envelope(
        {
            "contacts": [contact(wa_id=wa_id, user_id=user_id, parent_user_id=parent_user_id,
                                 username=username)],
            "messages": [message],
        }
    )  # fmt: skip


def status_of(
    wamid: str,
    status: str,
    *,
    wa_id: str | None = None,
    user_id: str | None = USER_ID,
    with_contacts: bool = True,
) -> dict[str, Any]:
    """A status of one of our messages; Meta names the recipient by ``recipient_user_id`` alone
    when it withholds the phone, and sends no ``contacts`` with a failed status."""
    item: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(int(time.time()))}
    if wa_id:
        item["recipient_id"] = wa_id
    if user_id:
        item["recipient_user_id"] = user_id
    value: dict[str, Any] = {"statuses": [item]}
    if with_contacts:
        value["contacts"] = [contact(wa_id=wa_id, user_id=user_id)]
    return envelope(value)


def number_changed(old: str, new: str, *, user_id: str | None = None) -> dict[str, Any]:
    """Meta's ``user_changed_number`` system message: from the old number, naming the new one."""
    system: dict[str, Any] = {
        "body": f"Ana changed from {old} to {new}",
        "wa_id": new,
        "type": "user_changed_number",
    }
    message: dict[str, Any] = {
        "from": old,
        "id": f"wamid.system.{uuid.uuid4().hex}",
        "timestamp": str(int(time.time())),
        "type": "system",
        "system": system,
    }
    if user_id:
        system["user_id"] = user_id
    return envelope({"messages": [message]})


def user_id_changed(previous: str, new: str) -> dict[str, Any]:
    """Meta's ``user_changed_user_id`` system message: the customer got a new BSUID."""
    message = {
        "from_user_id": previous,
        "id": f"wamid.system.{uuid.uuid4().hex}",
        "timestamp": str(int(time.time())),
        "type": "system",
        "system": {
            "body": "User changed their user id",
            "type": "user_changed_user_id",
            "previous_user_id": previous,
            "user_id": new,
        },
    }
    return envelope({"contacts": [contact(user_id=previous)], "messages": [message]})
