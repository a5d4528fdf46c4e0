"""Customer addresses: international numbers written as digits only (country code first, no
``+``), checked against their country's numbering plan, and business-scoped user ids (BSUIDs)
such as ``US.13491208655302741918``. Their shapes live in :mod:`app.whatsapp.ids`."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

from app.whatsapp.ids import is_phone_number, is_user_id

NUMBER_CACHE_SIZE = 65_536
"""Numbers whose verdict is remembered: parsing against the numbering plan is the costly part."""


def validate_whatsapp_number(number: str) -> bool:
    """Whether ``number`` is a valid digits-only international number, such as ``573001234567``.

    The form is checked first (digits only, no ``+``, no separators); the number itself is then
    checked against the numbering plan of its country with ``phonenumbers``.
    """
    if not is_phone_number(number):
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
    return is_user_id(user_id)


def is_parent_user_id(user_id: str) -> bool:
    """Whether ``user_id`` (a valid BSUID) is a parent BSUID, shared across a business portfolio."""
    return user_id[2:7] == ".ENT."
