"""The simulator's customers: each phone number with the business-scoped user id (BSUID) Meta
would give it, an optional username, and whether the customer hides the number.

A BSUID is derived from the phone number, so one customer keeps one BSUID across restarts and a
number change brings a new one, as at Meta: the country code of the number, a dot and 20 digits
of a hash (``CO.40213398765432101234``); a parent BSUID has ``ENT`` after the country.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any

import phonenumbers

from app.simulator.limits import TRACKED_RECIPIENTS

BSUID_DIGITS = 20
"""Digits after the country code in the BSUIDs the simulator makes (as in Meta's examples)."""

UNKNOWN_REGION = "US"
"""The country code of a BSUID whose number no numbering plan claims."""


def bsuid_for(wa_id: str, scope: str = "", parent: bool = False) -> str:
    """The BSUID (or parent BSUID) of phone number ``wa_id`` for one business ``scope``."""
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse("+" + wa_id))
    except phonenumbers.NumberParseException:
        region = None
    if not region or not re.fullmatch(r"[A-Z]{2}", region):
        region = UNKNOWN_REGION
    seed = f"{'parent' if parent else 'user'}:{scope}:{wa_id}".encode()
    digits = str(int.from_bytes(hashlib.sha256(seed).digest()[:16], "big"))
    digits = digits[-BSUID_DIGITS:].rjust(BSUID_DIGITS, "1")
    return f"{region}.ENT.{digits}" if parent else f"{region}.{digits}"


@dataclass
class Customer:
    """One simulated WhatsApp user."""

    wa_id: str
    user_id: str
    name: str = "Customer"
    username: str | None = None
    hide_phone: bool = False
    parent_user_id: str | None = None

    def contact(self, show_phone: bool | None = None) -> dict[str, Any]:
        """The customer as a webhook's ``contacts[]`` item; with the number unless hidden (or
        as ``show_phone`` says)."""
        profile: dict[str, Any] = {"name": self.name}
        if self.username:
            profile["username"] = self.username
        item: dict[str, Any] = {"profile": profile}
        if self.shows_phone() if show_phone is None else show_phone:
            item["wa_id"] = self.wa_id
        item["user_id"] = self.user_id
        if self.parent_user_id:
            item["parent_user_id"] = self.parent_user_id
        return item

    def shows_phone(self) -> bool:
        """Whether the customer's own messages carry their number."""
        return not self.hide_phone

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CustomerBook:
    """The simulated customers, by phone number and by BSUID; bounded and thread-safe.

    Any valid number is a customer the first time it is named; the least recently named is
    forgotten first once :data:`TRACKED_RECIPIENTS` are known.
    """

    def __init__(self, scope: str, capacity: int = TRACKED_RECIPIENTS):
        self.scope = scope
        self.capacity = capacity
        self._by_phone: OrderedDict[str, Customer] = OrderedDict()
        self._by_user_id: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, wa_id: str) -> Customer:
        """The customer with number ``wa_id``, made on first use."""
        with self._lock:
            customer = self._by_phone.pop(wa_id, None) or Customer(
                wa_id, bsuid_for(wa_id, self.scope)
            )
            self._remember(customer)
            return customer

    def find(self, key: str) -> Customer | None:
        """The customer with number, BSUID or parent BSUID ``key``, if the simulator knows one."""
        with self._lock:
            wa_id = self._by_user_id.get(key, key)
            return self._by_phone.get(wa_id)

    def update(self, wa_id: str, **changes: Any) -> Customer:
        """Change ``name``, ``username``, ``hide_phone`` or ``parent`` (give a parent BSUID)."""
        customer = self.get(wa_id)
        with self._lock:
            for name in ("name", "username", "hide_phone"):
                if name in changes:
                    setattr(customer, name, changes[name])
            if "parent" in changes:
                if customer.parent_user_id:
                    self._by_user_id.pop(customer.parent_user_id, None)
                customer.parent_user_id = (
                    bsuid_for(wa_id, self.scope, parent=True) if changes["parent"] else None
                )
            self._remember(customer)
        return customer

    def change_number(self, wa_id: str, new_wa_id: str) -> tuple[Customer, Customer]:
        """Customer ``wa_id`` moves to ``new_wa_id`` and gets that number's BSUIDs; returns a
        copy of the customer as they were, and the customer as they are now."""
        before = self.get(wa_id)
        with self._lock:
            old = Customer(**before.to_dict())
            self._by_phone.pop(wa_id, None)
            self._by_user_id.pop(old.user_id, None)
            if old.parent_user_id:
                self._by_user_id.pop(old.parent_user_id, None)
            after = Customer(
                new_wa_id,
                bsuid_for(new_wa_id, self.scope),
                old.name,
                old.username,
                old.hide_phone,
                bsuid_for(new_wa_id, self.scope, parent=True) if old.parent_user_id else None,
            )
            self._by_phone.pop(new_wa_id, None)
            self._remember(after)
        return old, after

    def _remember(self, customer: Customer) -> None:
        self._by_phone[customer.wa_id] = customer
        self._by_user_id[customer.user_id] = customer.wa_id
        if customer.parent_user_id:
            self._by_user_id[customer.parent_user_id] = customer.wa_id
        while len(self._by_phone) > self.capacity:
            _, gone = self._by_phone.popitem(last=False)
            self._by_user_id.pop(gone.user_id, None)
            if gone.parent_user_id:
                self._by_user_id.pop(gone.parent_user_id, None)
