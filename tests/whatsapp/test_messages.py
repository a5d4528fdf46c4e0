from __future__ import annotations

import pytest

from app.whatsapp.errors import MessageValidationError
from app.whatsapp.messages import MAX_TEXT_BODY, validate_message

TEXT = {"to": "573001234567", "type": "text", "text": {"body": "Hola"}}


def test_valid_text_gets_messaging_product():
    assert validate_message(TEXT) == {**TEXT, "messaging_product": "whatsapp"}


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ([], "body"),
        ({**TEXT, "messaging_product": "sms"}, "messaging_product"),
        ({**TEXT, "to": "+573001234567"}, "to"),
        ({**TEXT, "to": None}, "to"),
        ({**TEXT, "type": "hologram"}, "type"),
        ({"to": "573001234567", "type": "image"}, "image"),
        ({**TEXT, "text": {"body": ""}}, "text.body"),
        ({**TEXT, "text": {"body": "x" * (MAX_TEXT_BODY + 1)}}, "text.body"),
        ({"to": "573001234567", "type": "contacts", "contacts": []}, "contacts"),
    ],
)
def test_invalid_messages_name_the_field(message, field):
    with pytest.raises(MessageValidationError) as info:
        validate_message(message)
    assert info.value.field == field


@pytest.mark.parametrize("field", ["recipient_type", "type"])
def test_objects_where_names_belong_are_refused_not_crashed(field):
    with pytest.raises(MessageValidationError) as info:
        validate_message({**TEXT, field: {}})
    assert info.value.field == field
