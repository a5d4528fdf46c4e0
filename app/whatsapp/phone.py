"""WhatsApp ids: international numbers written as digits only (country code first, no ``+``),
and business-scoped user ids (BSUIDs) such as ``US.13491208655302741918``."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

_DIGITS = re.compile(r"^[1-9][0-9]{6,14}$")  # E.164 without '+': at most 15 digits, no leading 0

_USER_ID = re.compile(r"[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}")
# A two-letter country code, a dot, up to 128 alphanumerics; a parent BSUID has ENT. in between.

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


def canonical_whatsapp_number(number: str) -> str:
    """``number`` in the canonical form: without the leading ``+`` that Meta also accepts."""
    return number[1:] if number.startswith("+") else number


def validate_user_id(user_id: str) -> bool:
    """Whether ``user_id`` is a business-scoped user id (``US.13491208655302741918``) or a
    parent one (``US.ENT.11815799212886844830``), as Meta writes them."""
    return isinstance(user_id, str) and _USER_ID.fullmatch(user_id) is not None


def is_parent_user_id(user_id: str) -> bool:
    """Whether ``user_id`` (a valid BSUID) is a parent BSUID, shared across a business portfolio."""
    return user_id[2:7] == ".ENT."
