"""Addressing a customer by business-scoped user id: the builders put a BSUID in ``recipient``,
and the request the Graph client sends is Meta's message with that one documented addition.

Meta's v23.0 spec predates ``recipient`` (its ``BaseMessageProperties`` requires ``to``), so the
request is checked against the patched schema with ``recipient`` added as Meta documents it: a
string naming a BSUID or parent BSUID, and ``to`` or ``recipient`` required, not ``to`` alone.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.whatsapp import builders as b
from app.whatsapp.client import GraphClient
from app.whatsapp.errors import MessageValidationError
from app.whatsapp.messages import validate_message
from app.whatsapp.phone import canonical_whatsapp_number, validate_user_id
from tests.whatsapp.spec_support import message_schema_name, patched_components, schema_errors

USER_ID = "US.13491208655302741918"
PARENT_USER_ID = "US.ENT.11815799212886844830"


class CapturingSession:
    """Stands in for the HTTP session: keeps each request and answers as Meta does."""

    def __init__(self):
        self.requests: list[dict[str, Any]] = []

    def request(self, method: str, url: str, **kwargs: Any):
        self.requests.append({"method": method, "url": url, **kwargs})
        return _Answer(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": USER_ID, "user_id": USER_ID}],
                "messages": [{"id": "wamid.R1"}],
            }
        )


class _Answer:
    status_code = 200
    headers: dict[str, str] = {}

    def __init__(self, body: dict[str, Any]):
        self._body = body

    def json(self) -> dict[str, Any]:
        return self._body


def with_recipient(components: dict) -> dict:
    """The patched components plus ``recipient``, the one addition to Meta's v23.0 schema."""
    components = copy.deepcopy(components)
    base = components["schemas"]["BaseMessageProperties"]
    base["properties"]["recipient"] = {
        "type": "string",
        "pattern": r"^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}$",
    }
    base["required"] = [name for name in base["required"] if name != "to"]
    base["anyOf"] = [{"required": ["to"]}, {"required": ["recipient"]}]
    return components


def test_a_bsuid_goes_in_recipient_and_a_phone_in_to():
    by_bsuid = b.text(USER_ID, "hi")
    assert by_bsuid["recipient"] == USER_ID and "to" not in by_bsuid
    assert "to" not in b.text(PARENT_USER_ID, "hi")
    assert b.template(PARENT_USER_ID, "order_update", "es")["recipient"] == PARENT_USER_ID
    assert b.text("573001234567", "hi")["to"] == "573001234567"


def test_a_malformed_recipient_is_refused_naming_it():
    with pytest.raises(MessageValidationError) as info:
        validate_message({"recipient": "us.123", "type": "text", "text": {"body": "x"}})
    assert info.value.field == "recipient"


def test_the_request_by_recipient_is_metas_message_plus_recipient(spec):
    components = with_recipient(patched_components(spec))
    session = CapturingSession()
    client = GraphClient(
        base_url="https://graph.example",
        version="v23.0",
        phone_number_id="106540352242922",
        access_token="token",
        session=session,
    )
    bodies = [
        b.text(USER_ID, "Hola", reply_to="wamid.IN1"),
        b.template(PARENT_USER_ID, "order_update", "es"),
        b.image(USER_ID, link="https://example.com/a.jpg", caption="Foto"),
        {**b.text("573001234567", "both"), "recipient": USER_ID},
    ]
    for body in bodies:
        result = client.send_message(body)
        sent = session.requests[-1]["json"]
        assert sent == body
        assert schema_errors(components, message_schema_name(spec, sent), sent) == [], sent
    assert result.wamid == "wamid.R1" and result.user_id == USER_ID
    # Meta's own schema, unpatched for recipient, refuses a message without 'to': the addition
    # is what makes the difference.
    assert schema_errors(patched_components(spec), "TextMessage", bodies[0])


def test_phone_and_user_id_forms():
    assert canonical_whatsapp_number("+573001234567") == "573001234567"
    assert canonical_whatsapp_number("573001234567") == "573001234567"
    assert validate_user_id(USER_ID) and validate_user_id(PARENT_USER_ID)
    for bad in ("US.", "U.123", "US-123", "US.ENT.", "US." + "1" * 129, "us.123", "US.12 3"):
        assert not validate_user_id(bad), bad
