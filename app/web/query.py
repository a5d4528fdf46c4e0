"""Query parameters of ``/v1``: every number and boolean is parsed here, and strictly.

``str.isdigit`` and ``int`` accept far more than a client means (``²``, Arabic-Indic digits,
``-1``, ``+1``, `` 1``, ``1_000``); Python reads ``true`` as nothing in particular. Each of those
is a 400 ``invalid_parameter`` naming the parameter, never a 500 or a silent guess.
"""

from __future__ import annotations

import datetime as dt
import re

from flask import request

from app.errors import ApiError

INVALID_PARAMETER = "invalid_parameter"
"""The one error code of a query parameter that is not what the operation declares."""

MAX_DIGITS = 18
"""Longest integer accepted; every bound here fits, and no longer string reaches ``int``."""

_DIGITS = re.compile(rf"[0-9]{{1,{MAX_DIGITS}}}")
_BOOLEANS = {"true": True, "false": False}


def invalid_parameter(name: str, message: str) -> ApiError:
    """The 400 answer for query parameter ``name``."""
    return ApiError(400, INVALID_PARAMETER, f"{name} {message}", field=name)


def query_int(name: str, default: int | None, low: int, high: int) -> int | None:
    """Query parameter ``name`` as an integer from ``low`` to ``high`` written in ASCII digits;
    ``default`` when it is absent (an empty value is not absent: it is refused)."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise invalid_parameter(name, f"must be an integer from {low} to {high} (digits 0-9 only)")
    return int(raw)


def query_bool(name: str, default: bool) -> bool:
    """Query parameter ``name`` as ``true`` or ``false`` (nothing else); ``default`` when absent."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if raw not in _BOOLEANS:
        raise invalid_parameter(name, "must be true or false")
    return _BOOLEANS[raw]


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def query_date(name: str, default: dt.date) -> dt.date:
    """Query parameter ``name`` as a day, ``YYYY-MM-DD``; ``default`` when absent."""
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        if not _DATE.fullmatch(raw):
            raise ValueError(raw)
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise invalid_parameter(name, "must be a day, YYYY-MM-DD") from None
