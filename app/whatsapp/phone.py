"""WhatsApp ids: international numbers written as digits only (country code first, no ``+``)."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

_DIGITS = re.compile(r"^[1-9][0-9]{6,14}$")  # E.164 without '+': at most 15 digits, no leading 0

NUMBER_CACHE_SIZE = 65_536
"""Numbers whose verdict is remembered: parsing against the numbering plan is the costly part."""


def validate_whatsapp_number(number: str) -> bool:
    """Whether ``number`` is a valid digits-only international number, such as ``573001234567``.

    The form is checked first (digits only, no ``+``, no separators); the number itself is then
    checked against the numbering plan of its country with ``phonenumbers``.
    """
    if not isinstance(number, str) or not _DIGITS.match(number):
        return False
    return _is_valid_number(number)


@lru_cache(maxsize=NUMBER_CACHE_SIZE)
def _is_valid_number(number: str) -> bool:
    try:
        parsed = phonenumbers.parse("+" + number)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(parsed)
