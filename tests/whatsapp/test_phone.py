from __future__ import annotations

import pytest

from app.whatsapp.phone import validate_whatsapp_number


@pytest.mark.parametrize("number", ["573001234567", "12025551234", "34612345678", "5511987654321"])
def test_valid_numbers(number):
    assert validate_whatsapp_number(number)


@pytest.mark.parametrize(
    "number",
    [
        "123",
        "0123456789",
        "12345678901234567",
        "+573001234567",
        "57-300-123-4567",
        "abc123456789",
        "",
        " 573001234567",
        "5730012345670000",
        None,
        573001234567,
    ],
)
def test_invalid_numbers(number):
    assert not validate_whatsapp_number(number)
