"""``/v1/customers/<customer_id>``: who a customer is and whether they opted out of marketing;
``opt-out`` and ``opt-in`` record the customer's choice made elsewhere (a form, a call).

``customer_id`` is the customer's phone number or (parent) business-scoped user id; the contact
book finds the one customer behind either. Opt-outs are per sending number: the configured one.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

from app.conversations.customers import PHONE, CustomerBook, kind_of
from app.conversations.optout import API, OptOutBook
from app.db import get_redis
from app.errors import ApiError
from app.web.auth import require_number, requires

bp = Blueprint("customers", __name__, url_prefix="/customers")


def _lookup(customer_id: str) -> tuple[str, str, dict[str, Any], bool]:
    """(sending number, customer key, the answer's ids, whether the book knows them)."""
    kind = kind_of(customer_id)
    if kind is None:
        raise ApiError(
            400,
            "invalid_wa_id",
            "must be the customer's number (digits only) or business-scoped user id",
        )
    settings = current_app.config["SETTINGS"]
    number = settings.phone_number_id
    require_number(number)
    book = CustomerBook(get_redis(settings.redis_url))
    key = book.key_for(number, customer_id)
    known = book.get(number, key)
    phone = (known.wa_id if known else None) or (customer_id if kind == PHONE else None)
    described = known.to_dict() if known else {"key": key, "wa_id": phone}
    return number, key, {**described, "wa_id": phone}, known is not None


def _answer(number: str, key: str, customer: dict[str, Any]):
    opt_out = OptOutBook(get_redis(current_app.config["SETTINGS"].redis_url)).get(number, key)
    return jsonify(
        {
            "phone_number_id": number,
            "customer": customer,
            "marketing_opt_out": opt_out.to_dict() if opt_out else None,
        }
    )


@bp.get("/<customer_id>")
@requires("read")
def show(customer_id: str):
    """The customer's ids and marketing opt-out; 404 for one the gateway knows nothing of."""
    number, key, customer, known = _lookup(customer_id)
    book = OptOutBook(get_redis(current_app.config["SETTINGS"].redis_url))
    if not known and not book.is_opted_out(number, key):
        raise ApiError(404, "not_found", "the gateway knows nothing of this customer")
    return _answer(number, key, customer)


@bp.post("/<customer_id>/opt-out")
@requires("send")
def opt_out(customer_id: str):
    """Opt the customer out of marketing (no confirmation is sent: they chose elsewhere)."""
    number, key, customer, _ = _lookup(customer_id)
    OptOutBook(get_redis(current_app.config["SETTINGS"].redis_url)).opt_out(number, key, API)
    return _answer(number, key, customer)


@bp.post("/<customer_id>/opt-in")
@requires("send")
def opt_in(customer_id: str):
    """Opt the customer back in to marketing."""
    number, key, customer, _ = _lookup(customer_id)
    OptOutBook(get_redis(current_app.config["SETTINGS"].redis_url)).opt_in(number, key)
    return _answer(number, key, customer)
