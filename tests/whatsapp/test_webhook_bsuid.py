"""Webhooks about customers known by business-scoped user id (BSUID), parsed without losing one id.

The payloads in ``tests/data/bsuid/`` are written for this project from the field tables of Meta's
webhook reference (messages, statuses, system messages, ``user_id_update``, ``user_preferences``);
every optional field that Meta may leave out is left out in at least one of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.whatsapp.webhook import WebhookEvent, parse_webhook

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parents[1] / "data" / "bsuid"

ID_KEYS = frozenset(
    {
        "wa_id",
        "from",
        "recipient_id",
        "customer",
        "user_id",
        "parent_user_id",
        "from_user_id",
        "from_parent_user_id",
        "recipient_user_id",
        "recipient_parent_user_id",
        "previous_user_id",
        "previous_parent_user_id",
        "username",
        "previous",
        "current",
    }
)
"""Keys whose values name a customer: a phone number, a BSUID, a parent BSUID or a username."""


def load(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


def payload_ids(node: Any) -> set[str]:
    """Every customer id anywhere in a payload (the business's own metadata excepted)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "metadata":
                continue
            if key in ID_KEYS and isinstance(value, str):
                found.add(value)
            else:
                found |= payload_ids(value)
    elif isinstance(node, list):
        for item in node:
            found |= payload_ids(item)
    return found


def typed_ids(event: WebhookEvent) -> set[str]:
    """Every customer id the typed result carries, outside the ``raw`` dicts."""
    values: list[str | None] = []
    for c in event.contacts:
        values += [c.wa_id, c.user_id, c.parent_user_id, c.username]
    for m in event.messages:
        values += [m.from_, m.from_user_id, m.from_parent_user_id]
        if m.system:
            values += [m.system.wa_id, m.system.customer, m.system.user_id]
            values += [m.system.parent_user_id, m.system.previous_user_id]
            values += [m.system.previous_parent_user_id]
    for s in event.statuses:
        values += [s.recipient_id, s.recipient_user_id, s.recipient_parent_user_id]
        for c in s.contacts:
            values += [c.wa_id, c.user_id, c.parent_user_id, c.username]
    for i in event.identity_changes:
        values += [i.previous_wa_id, i.wa_id, i.previous_user_id, i.user_id]
        values += [i.previous_parent_user_id, i.parent_user_id]
    for p in event.user_preferences:
        values += [p.wa_id, p.user_id, p.parent_user_id]
    return {v for v in values if v}


PAYLOADS = sorted(path.name for path in DATA.glob("*.json"))


def test_there_is_a_payload_for_each_bsuid_shape():
    assert set(PAYLOADS) >= {
        "message_username_only.json",
        "message_phone_and_bsuid.json",
        "message_parent_bsuid.json",
        "status_sent.json",
        "status_delivered.json",
        "status_read.json",
        "status_failed.json",
        "system_user_changed_number.json",
        "system_user_changed_user_id.json",
        "user_id_update.json",
        "user_preferences.json",
    }


@pytest.mark.parametrize("name", PAYLOADS)
def test_every_id_in_the_payload_is_kept_in_the_typed_result(name):
    payload = load(name)
    ids = payload_ids(payload)
    assert ids, "a BSUID payload names its customer"
    assert ids <= typed_ids(parse_webhook(payload)), name


def test_a_username_only_customer_is_known_by_bsuid_and_username():
    (message,) = parse_webhook(load("message_username_only.json")).messages
    assert message.from_ == "" and message.from_user_id == "CO.40213398765432101234"
    assert message.contact is not None and message.contact.wa_id is None
    assert (message.contact.username, message.contact_name) == ("vale.rios", "Valentina")


def test_parent_bsuid_reaches_the_message():
    (message,) = parse_webhook(load("message_parent_bsuid.json")).messages
    assert message.from_parent_user_id == "US.ENT.99887766554433221100"
    assert message.contact.parent_user_id == "US.ENT.99887766554433221100"


@pytest.mark.parametrize("status", ["sent", "delivered", "read"])
def test_statuses_name_the_customer_by_bsuid_alone(status):
    (item,) = parse_webhook(load(f"status_{status}.json")).statuses
    assert item.status == status and item.recipient_id is None
    assert item.recipient_user_id == "CO.40213398765432101234"
    assert [c.user_id for c in item.contacts] == ["CO.40213398765432101234"]


def test_a_failed_status_without_contacts_parses():
    (item,) = parse_webhook(load("status_failed.json")).statuses
    assert item.contacts == () and item.error_details[0].code == 131047
    assert item.recipient_user_id == "CO.88001122334455667788"


def test_a_changed_number_links_old_and_new_ids():
    (change,) = parse_webhook(load("system_user_changed_number.json")).identity_changes
    assert (change.previous_wa_id, change.wa_id) == ("573001234567", "573009876543")
    assert (change.previous_user_id, change.user_id) == (
        "CO.88001122334455667788",
        "CO.31415926535897932384",
    )


def test_a_changed_bsuid_without_phone_links_old_and_new_ids():
    (change,) = parse_webhook(load("system_user_changed_user_id.json")).identity_changes
    assert change.previous_wa_id is None and change.wa_id is None
    assert change.previous_user_id == "CO.40213398765432101234"
    assert change.user_id == "CO.27182818284590452353"
    assert change.previous_parent_user_id == "CO.ENT.14142135623730950488"


def test_user_id_update_becomes_an_identity_change():
    event = parse_webhook(load("user_id_update.json"))
    (change,) = event.identity_changes
    assert change.phone_number_id == "123456789012345" and change.timestamp == 1780000500
    assert change.wa_id == "14155550199"
    assert (change.previous_user_id, change.user_id) == (
        "US.55512345678901234567",
        "US.77700011122233344455",
    )
    assert (change.previous_parent_user_id, change.parent_user_id) == (
        "US.ENT.99887766554433221100",
        "US.ENT.12121212343434345656",
    )
    assert [c.wa_id for c in event.contacts] == ["14155550199"]


def test_user_preferences_are_typed():
    (preference,) = parse_webhook(load("user_preferences.json")).user_preferences
    assert (preference.category, preference.value) == ("marketing_messages", "stop")
    assert preference.wa_id == "573001234567"
    assert preference.user_id == "CO.88001122334455667788"
    assert preference.timestamp == 1780000600 and preference.detail


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("user_id_update", {"user_id_update": [{}]}),
        ("user_id_update", {"user_id_update": [{"user_id": "US.1"}], "contacts": "x"}),
        ("user_id_update", {}),
        ("user_preferences", {"user_preferences": [{}]}),
        ("user_preferences", {"user_preferences": "stop"}),
        ("user_preferences", {}),
    ],
)
def test_optional_fields_left_out_never_raise(field, value):
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": field, "value": value}]}],
    }
    event = parse_webhook(payload)
    assert all(change.user_id in (None, "US.1") for change in event.identity_changes)
    assert all(p.value is None for p in event.user_preferences)


def test_the_messages_field_payloads_validate_against_the_patched_spec(spec):
    from tests.whatsapp.spec_support import patched_components, schema_errors

    components = patched_components(spec)
    on_messages = [n for n in PAYLOADS if load(n)["entry"][0]["changes"][0]["field"] == "messages"]
    assert len(on_messages) == 9  # user_id_update and user_preferences are newer than the spec
    for name in on_messages:
        assert schema_errors(components, "WebhookPayload", load(name)) == [], name
