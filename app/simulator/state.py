"""The simulator's state: who it plays, which of Meta's rules it applies, and what it received.

One :class:`Simulator` per application, held in ``app.extensions["simulator"]``; the blueprints
(``graph``, ``media``, ``control``) read and change it through :func:`current_simulator`.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any

from flask import current_app

from app.simulator.customers import Customer, CustomerBook
from app.simulator.dispatcher import WebhookDispatcher
from app.simulator.faults import Faults
from app.simulator.limits import PairLimiter, ServiceWindows, TokenBucket
from app.simulator.mediastore import MEDIA_CAPACITY_BYTES, MEDIA_URL_TTL, MediaStore
from app.simulator.meta import envelope, new_wamid, status_error, status_item
from app.simulator.templatebook import TemplateBook
from app.whatsapp.ids import is_user_id
from app.whatsapp.phone import is_parent_user_id, validate_whatsapp_number

EXTENSION = "simulator"
"""The key of the application's :class:`Simulator` in ``app.extensions``."""

RECORD_SIZE = 100_000
"""Sent messages remembered for inspection; older ones are forgotten so memory stays flat."""

DEFAULT_STATUS_DELAY = 0.2
"""Seconds between a message's ``sent``, ``delivered`` and ``read`` webhooks."""

DEFAULT_THROUGHPUT = 80.0
"""Messages a second one business number may send (Meta's default tier)."""

PAIR_INTERVAL = 6.0
"""Seconds per message to one customer, once the burst is spent (Meta's pair rate limit)."""

PAIR_BURST = 45
"""Messages to one customer that may go at once before the pair rate applies."""


@dataclass
class SimulatorConfig:
    """Who the simulator is, where it delivers webhooks, and which of Meta's rules it applies."""

    access_token: str
    webhook_secret: str
    phone_number_id: str
    business_account_id: str = "102290129340398"
    display_phone_number: str = "15550783881"
    webhook_url: str | None = None
    status_delay: float = DEFAULT_STATUS_DELAY
    statuses: bool = True
    throughput_per_second: float = DEFAULT_THROUGHPUT
    """Per-number limit (error 130429 beyond it); 0 turns it off."""
    pair_limit: bool = True
    """Meta's per-recipient limit (error 131056)."""
    pair_interval: float = PAIR_INTERVAL
    pair_burst: int = PAIR_BURST
    enforce_window: bool = True
    """Refuse free-form messages to customers who have not written in 24 hours (131047)."""
    not_on_whatsapp: set[str] = field(default_factory=set)
    """Numbers without a WhatsApp account (131026)."""
    refusals_as_statuses: bool = False
    """Report 131026 and 131047 as a ``failed`` status webhook after accepting the message (as
    the live API often does), instead of refusing the request."""
    media_url_ttl: float = MEDIA_URL_TTL
    media_capacity_bytes: int = MEDIA_CAPACITY_BYTES


RUNTIME_SETTINGS = frozenset(
    {
        "status_delay",
        "statuses",
        "throughput_per_second",
        "pair_limit",
        "pair_interval",
        "pair_burst",
        "enforce_window",
        "not_on_whatsapp",
        "refusals_as_statuses",
        "media_url_ttl",
    }
)
"""Settings ``PUT /_sim/config`` may change while the simulator runs."""


class Simulator:
    """The simulator's state: what it received, its faults and limits, its media, its webhooks."""

    def __init__(self, config: SimulatorConfig, faults: Faults | None = None):
        self.config = config
        self.faults = faults or Faults()
        self.received: deque[dict[str, Any]] = deque(maxlen=RECORD_SIZE)
        self.read_receipts: deque[dict[str, Any]] = deque(maxlen=RECORD_SIZE)
        self.requests_seen = 0
        self.refused: dict[int, int] = {}
        self.lock = threading.Lock()
        self.windows = ServiceWindows()
        self.media = MediaStore(config.media_capacity_bytes, config.media_url_ttl)
        self.random = random.Random()
        self.customers = CustomerBook(config.business_account_id)
        self.templates = TemplateBook(config.business_account_id)
        self._apply_limits()
        self.dispatcher = (
            WebhookDispatcher(config.webhook_url, config.webhook_secret)
            if config.webhook_url
            else None
        )

    def _apply_limits(self) -> None:
        rate = self.config.throughput_per_second
        self.throughput = TokenBucket(rate, max(1.0, rate)) if rate > 0 else None
        self.pairs = PairLimiter(self.config.pair_interval, self.config.pair_burst)
        self.media.url_ttl = self.config.media_url_ttl

    def configure(self, changes: dict[str, Any]) -> None:
        """Change the rules named in ``changes`` (see :data:`RUNTIME_SETTINGS`)."""
        if not isinstance(changes, dict):
            raise ValueError("config must be a JSON object")
        types = {f.name: f.type for f in fields(SimulatorConfig)}
        parsed = {}
        for name, value in changes.items():
            if name not in RUNTIME_SETTINGS:
                raise ValueError(f"{name!r} cannot be changed at run time")
            kind = types[name]
            if kind == "bool":
                if not isinstance(value, bool):
                    raise ValueError(f"{name} must be true or false")
            elif kind.startswith("set"):
                if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
                    raise ValueError(f"{name} must be a list of numbers")
                value = set(value)
            elif kind == "int":
                value = int(value)
            else:
                value = float(value)
                if value < 0:
                    raise ValueError(f"{name} must be at least 0")
            parsed[name] = value
        with self.lock:
            for name, value in parsed.items():
                setattr(self.config, name, value)
            self._apply_limits()

    def settings(self) -> dict[str, Any]:
        """The rules in force, JSON-safe, without credentials."""
        data = {name: getattr(self.config, name) for name in sorted(RUNTIME_SETTINGS)}
        data["not_on_whatsapp"] = sorted(data["not_on_whatsapp"])
        return data

    def envelope(self, value: dict[str, Any], field: str = "messages") -> dict[str, Any]:
        """Wrap a change ``value`` in Meta's webhook envelope for this number."""
        return envelope(
            self.config.business_account_id,
            self.config.phone_number_id,
            self.config.display_phone_number,
            value,
            field,
        )

    def customer_for(self, key: str) -> Customer | None:
        """The customer a send names by number, BSUID or parent BSUID; None for a BSUID the
        simulator never met (it still accepts the send, as any valid address) and for a group."""
        if is_user_id(key):
            return self.customers.find(key)
        return self.customers.get(key) if validate_whatsapp_number(key) else None

    def status_webhook(
        self,
        wamid: str,
        recipient: str,
        status: str,
        category: str = "service",
        errors: list[dict[str, Any]] | None = None,
        by_phone: bool = True,
    ) -> dict[str, Any]:
        """The webhook Meta sends when message ``wamid`` to ``recipient`` (a number or a BSUID)
        reaches ``status``. ``by_phone``: the business sent to the number, so Meta names it
        even if the customer hides it. Failed statuses carry no ``contacts``, as at Meta."""
        customer = self.customer_for(recipient)
        contact: dict[str, Any] | None = None
        if customer is not None:
            shown = by_phone or customer.shows_phone()
            item = status_item(
                wamid,
                customer.wa_id if shown else None,
                status,
                category,
                errors,
                customer.user_id,
                customer.parent_user_id,
            )
            contact = customer.contact(shown)
        elif is_user_id(recipient) and is_parent_user_id(recipient):
            item = status_item(wamid, None, status, category, errors, None, recipient)
            contact = {"parent_user_id": recipient}
        elif is_user_id(recipient):
            item = status_item(wamid, None, status, category, errors, recipient)
            contact = {"user_id": recipient}
        else:  # a group: named by its id alone
            item = status_item(wamid, recipient, status, category, errors)
        value: dict[str, Any] = {"statuses": [item]}
        if contact is not None and status != "failed":
            value = {"contacts": [contact], **value}
        return self.envelope(value)

    def customer_webhook(
        self, customer: Customer, message: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """A webhook carrying ``message`` from ``customer``; returns its wamid too. Without the
        number when the customer hides it: then ``from_user_id`` alone names them."""
        wamid = new_wamid()
        sender: dict[str, Any] = {}
        if customer.shows_phone():
            sender["from"] = customer.wa_id
        sender["from_user_id"] = customer.user_id
        if customer.parent_user_id:
            sender["from_parent_user_id"] = customer.parent_user_id
        body = {**sender, "id": wamid, "timestamp": str(int(time.time())), **message}
        value = {"contacts": [customer.contact()], "messages": [body]}
        return wamid, self.envelope(value)

    def number_change_webhook(self, old: Customer, new: Customer) -> dict[str, Any]:
        """The system message Meta sends when ``old`` became ``new``: ``user_changed_number``
        with the new number, or ``user_changed_user_id`` (no number) when the customer hides
        it. Like every system message, it carries no ``contacts``."""
        system: dict[str, Any]
        sender: dict[str, Any] = {}
        if old.shows_phone():
            sender["from"] = old.wa_id
            system = {
                "body": f"User {old.name} changed from {old.wa_id} to {new.wa_id}",
                "wa_id": new.wa_id,
                "type": "user_changed_number",
            }
        else:
            system = {
                "body": f"User {old.username or old.name} changed their business-scoped user ID",
                "type": "user_changed_user_id",
            }
        sender["from_user_id"] = old.user_id
        system["user_id"] = new.user_id
        system["previous_user_id"] = old.user_id
        if new.parent_user_id:
            system["parent_user_id"] = new.parent_user_id
        if old.parent_user_id:
            system["previous_parent_user_id"] = old.parent_user_id
        message = {
            **sender,
            "id": new_wamid(),
            "timestamp": str(int(time.time())),
            "type": "system",
            "system": system,
        }
        return self.envelope({"messages": [message]})

    def count_refusal(self, code: int) -> None:
        """Count one request refused with Graph error ``code``."""
        with self.lock:
            self.refused[code] = self.refused.get(code, 0) + 1

    def schedule_statuses(
        self, wamid: str, to: str, category: str, failure: int | None, by_phone: bool = True
    ) -> None:
        """Queue the lifecycle webhooks of an accepted message to ``to`` (a number or a BSUID),
        in the order the faults say."""
        if self.dispatcher is None or not self.config.statuses:
            return
        if failure is not None:
            lifecycle = [("failed", [status_error(failure)])]
        else:
            lifecycle = [("sent", None), ("delivered", None), ("read", None)]
        payloads = [
            self.status_webhook(wamid, to, status, category, errors, by_phone)
            for status, errors in lifecycle
        ]
        if self.faults.duplicate_status_rate:
            payloads = [
                copy
                for payload in payloads
                for copy in (
                    (payload, payload)
                    if self.random.random() < self.faults.duplicate_status_rate
                    else (payload,)
                )
            ]
        order = self.faults.status_order
        delay = self.config.status_delay
        if order == "in_order":
            first, *rest = payloads
            self.dispatcher.schedule(first, delay, [(payload, delay) for payload in rest])
            return
        if order == "reversed":
            payloads.reverse()
        else:
            shuffled = payloads[:]
            while len(payloads) > 1 and shuffled == payloads:
                self.random.shuffle(shuffled)
            payloads = shuffled
        # Out of order on purpose: each delivered on its own, due one after another.
        for step, payload in enumerate(payloads, start=1):
            self.dispatcher.schedule(payload, delay * step)


def current_simulator() -> Simulator:
    """The simulator of the application handling the current request."""
    return current_app.extensions[EXTENSION]
