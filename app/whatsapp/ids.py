"""The shape of every id Meta hands out, in one place: checked before an id names a Redis key,
a folder or a Graph URL.

Each pattern is matched whole (``fullmatch``): ``$`` also matches before a trailing newline, so
``re.match(r"^[0-9]+$", "573001234567\\n")`` succeeds, and that newline then reaches a key, a path
or a request. Classes are ASCII (``[0-9]``, not ``\\d`` or :meth:`str.isdigit`, which accept
``²`` and ``١``). Ids are never echoed in errors: a customer id may be a phone number.
"""

from __future__ import annotations

import re
from typing import Any

PHONE_NUMBER = re.compile(r"[1-9][0-9]{6,14}")
"""A number to send to, E.164 without the ``+``: at most 15 digits, no leading 0 (the
numbering plan is checked on top, in :mod:`app.whatsapp.phone`)."""

WA_ID = re.compile(r"[0-9]{5,20}")
"""A customer's WhatsApp id as webhooks and the API's URLs carry it: their number, digits only."""

USER_ID = re.compile(r"[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}")
"""A business-scoped user id (``US.13491208655302741918``) or a parent one (``US.ENT.``...): a
two-letter country code, a dot, up to 128 alphanumerics."""

PHONE_NUMBER_ID = re.compile(r"[0-9]{5,20}")
"""Meta's id of a business phone number."""

BUSINESS_ACCOUNT_ID = re.compile(r"[0-9]{5,20}")
"""Meta's id of a WhatsApp Business Account (WABA): a numeric Graph id."""

MEDIA_ID = re.compile(r"[0-9]{1,32}")
"""Meta's id of an uploaded or received media file (numeric, like every Graph object id)."""

WAMID = re.compile(r"wamid\.[A-Za-z0-9+/=_.-]{1,512}")
"""A WhatsApp message id: ``wamid.`` and base64 (either alphabet, dots allowed). It goes in
request bodies and Redis keys, never in a path."""


def _whole(pattern: re.Pattern[str], value: Any) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def is_phone_number(value: Any) -> bool:
    """Whether ``value`` has the form of a number to send to (see :data:`PHONE_NUMBER`)."""
    return _whole(PHONE_NUMBER, value)


def is_wa_id(value: Any) -> bool:
    """Whether ``value`` is a customer's WhatsApp id (see :data:`WA_ID`)."""
    return _whole(WA_ID, value)


def is_user_id(value: Any) -> bool:
    """Whether ``value`` is a business-scoped user id, or a parent one (see :data:`USER_ID`)."""
    return _whole(USER_ID, value)


def is_customer_id(value: Any) -> bool:
    """Whether ``value`` names a customer: a WhatsApp id or a (parent) business-scoped user id.
    Such a value is safe as one path segment: no separator, and never ``.`` or ``..``."""
    return is_wa_id(value) or is_user_id(value)


def is_phone_number_id(value: Any) -> bool:
    """Whether ``value`` is Meta's id of a business phone number (see :data:`PHONE_NUMBER_ID`)."""
    return _whole(PHONE_NUMBER_ID, value)


def is_business_account_id(value: Any) -> bool:
    """Whether ``value`` is a WhatsApp Business Account id (see :data:`BUSINESS_ACCOUNT_ID`)."""
    return _whole(BUSINESS_ACCOUNT_ID, value)


def is_media_id(value: Any) -> bool:
    """Whether ``value`` is a media id (see :data:`MEDIA_ID`)."""
    return _whole(MEDIA_ID, value)


def is_wamid(value: Any) -> bool:
    """Whether ``value`` is a WhatsApp message id (see :data:`WAMID`)."""
    return _whole(WAMID, value)
