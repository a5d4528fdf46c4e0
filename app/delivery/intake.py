"""Accepting messages from the business: validate, apply the 24-hour window, record, enqueue.

The API's views call :func:`prepare_many` for their messages (one round trip for all their
customers' keys) and :func:`accept` for the lot; a message is only reported accepted once its
record exists and the broker holds its send task.
"""

from __future__ import annotations

import collections
import functools
import logging
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.config import Settings
from app.conversations.customers import CustomerBook
from app.conversations.optout import OptOutBook
from app.delivery.idempotency import IdempotencyStore
from app.delivery.messages import QUEUED, MessageStore, NewMessage
from app.delivery.window import CustomerWindows, FallbackTemplate, is_free_form
from app.errors import DeliveryError
from app.templates import MARKETING, Template, TemplateRefused, TemplateStore, check_send
from app.whatsapp.errors import MessageValidationError
from app.whatsapp.ids import is_phone_number_id
from app.whatsapp.messages import validate_message
from app.whatsapp.phone import canonical_whatsapp_number

log = logging.getLogger(__name__)

PRIORITIES = ("high", "normal", "bulk")
"""Priority lanes: ``high`` for a customer who is waiting, ``bulk`` for campaigns."""

DEFAULT_PRIORITY = "normal"

MAX_BATCH = 1000
"""Messages one batch request may carry."""

EnqueueAll = Callable[[Sequence[tuple[str, str]]], None]
"""Puts one send task per (message_id, priority lane) on the broker, or raises."""


class Refused(DeliveryError):
    """A message the API refuses: ``code`` for programs, ``field`` and ``message`` for people."""

    def __init__(self, code: str, field: str, message: str):
        self.code = code
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "field": self.field, "message": self.message}


class QueueFull(DeliveryError):
    """A lane of a sending number holds its cap of messages: the request is refused whole, to be
    tried again after ``retry_after`` seconds, when that many have drained at the number's rate."""

    def __init__(self, lane: str, phone_number_id: str, waiting: int, cap: int, retry_after: int):
        self.lane = lane
        self.phone_number_id = phone_number_id
        self.waiting = waiting
        self.cap = cap
        self.retry_after = retry_after
        super().__init__(
            f"the {lane} lane of number {phone_number_id} holds {waiting} messages and takes "
            f"at most {cap}: retry after {retry_after} s"
        )


MAX_RETRY_AFTER = 3600
"""The longest ``Retry-After`` a full lane answers: past an hour, a client should look again."""


@dataclass(frozen=True)
class LaneCaps:
    """The messages each lane may hold per sending number (``SEND_QUEUE_CAPS``; a lane without a
    cap has none), and each number's send rate, which tells a refused client when to come back."""

    caps: Mapping[str, int]
    rates: Mapping[str, float] = field(default_factory=dict)
    default_rate: float = 80.0

    @classmethod
    def from_settings(cls, settings: Settings) -> LaneCaps:
        return cls(settings.send_queue_caps, settings.send_rate_limits, settings.send_rate_limit)

    def check(self, store: MessageStore, submissions: Sequence[Submission]) -> None:
        """Raise :class:`QueueFull` if accepting ``submissions`` would take a capped lane of a
        number past its cap. A soft cap: requests checked side by side may pass it by their
        own size."""
        adding = collections.Counter(
            (s.priority, s.phone_number_id or "") for s in submissions if s.priority in self.caps
        )
        for (lane, number), count in adding.items():
            cap, waiting = self.caps[lane], store.waiting(lane, number or None)
            if waiting + count > cap:
                rate = self.rates.get(number, self.default_rate)
                wait = math.ceil((waiting + count - cap) / rate)
                raise QueueFull(lane, number, waiting, cap, max(1, min(MAX_RETRY_AFTER, wait)))


class RequestTemplates:
    """The synced templates as one API request reads them, for :func:`check_send`: the sync time
    and each template once per request, however many of its messages use it (a campaign's
    thousand messages share one template, and each read is a round trip to Redis)."""

    def __init__(self, store: TemplateStore):
        self.store = store
        self._kept: dict[tuple[str, str], Template | None] = {}

    @functools.cached_property
    def _synced_at(self) -> float | None:
        return self.store.synced_at()

    def synced_at(self) -> float | None:
        return self._synced_at

    def get(self, name: str, language: str) -> Template | None:
        if (name, language) not in self._kept:
            self._kept[name, language] = self.store.get(name, language)
        return self._kept[name, language]


@dataclass(frozen=True)
class Submission:
    """One validated message ready to record: what to send, on which lane, and any history note."""

    message: dict[str, Any]
    priority: str
    note: dict[str, Any] = field(default_factory=dict)
    phone_number_id: str | None = None
    """The sending number; None for the configured one."""
    customer: str | None = None
    """The customer's key, looked up once here and kept on the record for the sends."""


@dataclass(frozen=True)
class Accepted:
    """The ids of the accepted messages; ``replayed`` if an idempotent repeat returned them."""

    ids: list[str]
    replayed: bool = False


@dataclass(frozen=True)
class Addressed:
    """A message validated (:func:`address`), before its customer's checks (:func:`place`)."""

    message: dict[str, Any]
    priority: str
    sender: str
    """The sending number."""
    address: str
    """The field that names the customer: ``to`` or ``recipient``."""

    @property
    def customer_id(self) -> str:
        return self.message.get(self.address, "")

    @property
    def keyed(self) -> bool:
        """Whether the customer has a key in the contact book (a group has none)."""
        return self.message.get("recipient_type") != "group"


def prepare(
    body: Any,
    *,
    phone_number_id: str,
    windows: CustomerWindows,
    fallback: FallbackTemplate | None,
    is_registered: Callable[[str], bool] | None = None,
    customers: CustomerBook | None = None,
    templates: TemplateStore | RequestTemplates | None = None,
    opt_outs: OptOutBook | None = None,
) -> Submission:
    """Validate one message of the API and apply the customer's 24-hour window.

    ``phone_number_id`` is the configured sending number; a body may name another with its own
    ``phone_number_id`` if ``is_registered`` says it is one of the gateway's numbers. The
    customer is ``to`` (a phone) or ``recipient`` (a BSUID); given both, ``to`` wins, as at Meta.
    ``customers`` finds the customer key their window is kept under (without it: the id itself).
    ``templates`` checks a template send against the synced templates (``template_invalid``),
    and ``opt_outs`` refuses a marketing template to a customer who opted out (``opted_out``).
    Raises :class:`Refused` with ``invalid_message`` (naming the field), ``template_invalid``,
    ``opted_out`` or ``window_closed``.
    """
    (prepared,) = prepare_many(
        [body],
        phone_number_id=phone_number_id,
        windows=windows,
        fallback=fallback,
        is_registered=is_registered,
        customers=customers,
        templates=templates,
        opt_outs=opt_outs,
    )
    if isinstance(prepared, Refused):
        raise prepared
    return prepared


def prepare_many(
    bodies: Sequence[Any],
    *,
    phone_number_id: str,
    windows: CustomerWindows,
    fallback: FallbackTemplate | None,
    is_registered: Callable[[str], bool] | None = None,
    customers: CustomerBook | None = None,
    templates: TemplateStore | RequestTemplates | None = None,
    opt_outs: OptOutBook | None = None,
) -> list[Submission | Refused]:
    """:func:`prepare` for each of ``bodies``, its submission or its refusal, in order; the
    customers' keys are read in one round trip for them all, rather than one each."""
    addressed: list[Addressed | Refused] = []
    for body in bodies:
        try:
            addressed.append(
                address(body, phone_number_id=phone_number_id, is_registered=is_registered)
            )
        except Refused as refused:
            addressed.append(refused)
    keyed = [i for i, a in enumerate(addressed) if isinstance(a, Addressed) and a.keyed]
    known: dict[int, str] = {}
    if customers is not None and keyed:
        found = customers.keys_for([(addressed[i].sender, addressed[i].customer_id) for i in keyed])
        known = dict(zip(keyed, found, strict=True))
    out: list[Submission | Refused] = []
    for i, a in enumerate(addressed):
        if isinstance(a, Refused):
            out.append(a)
            continue
        try:
            out.append(
                place(
                    a,
                    known.get(i),
                    windows=windows,
                    fallback=fallback,
                    templates=templates,
                    opt_outs=opt_outs,
                )
            )
        except Refused as refused:
            out.append(refused)
    return out


def address(
    body: Any, *, phone_number_id: str, is_registered: Callable[[str], bool] | None = None
) -> Addressed:
    """The first half of :func:`prepare`: the body checked, its sending number and customer."""
    if not isinstance(body, dict):
        raise Refused("invalid_message", "body", "must be a JSON object")
    priority = body.get("priority", DEFAULT_PRIORITY)
    if priority not in PRIORITIES:
        raise Refused("invalid_message", "priority", f"must be one of {', '.join(PRIORITIES)}")
    sender = body.get("phone_number_id", phone_number_id)
    if not is_phone_number_id(sender):
        raise Refused(
            "invalid_message", "phone_number_id", "must be Meta's numeric phone number id"
        )
    if sender != phone_number_id and not (is_registered is not None and is_registered(sender)):
        raise Refused(
            "invalid_message",
            "phone_number_id",
            "is not a sending number of this gateway (see 'wa-gateway numbers add')",
        )
    message = {k: v for k, v in body.items() if k not in ("priority", "phone_number_id")}
    if isinstance(message.get("to"), str) and message.get("recipient_type") != "group":
        # Meta accepts "+573001234567"; the record and every key use the digits only.
        message["to"] = canonical_whatsapp_number(message["to"])
    try:
        message = validate_message(message)
    except MessageValidationError as exc:
        raise Refused("invalid_message", exc.field, exc.message) from None
    return Addressed(message, priority, sender, "to" if message.get("to") else "recipient")


def place(
    addressed: Addressed,
    known: str | None,
    *,
    windows: CustomerWindows,
    fallback: FallbackTemplate | None,
    templates: TemplateStore | RequestTemplates | None = None,
    opt_outs: OptOutBook | None = None,
) -> Submission:
    """The second half of :func:`prepare`, given the customer's key (``known``, None when not
    looked up): the template, opt-out and 24-hour window checks."""
    message, priority, sender = addressed.message, addressed.priority, addressed.sender
    address_ = addressed.address
    # The window is per (business number, customer): the one this message is sent from.
    customer = known if known is not None else addressed.customer_id
    if message.get("type") == "template" and templates is not None:
        try:
            kept = check_send(templates, message["template"])
        except TemplateRefused as exc:
            raise Refused("template_invalid", exc.field, exc.message) from None
        if (
            kept is not None
            and kept.category == MARKETING
            and opt_outs is not None
            and opt_outs.is_opted_out(sender, customer)
        ):
            raise Refused("opted_out", address_, "the customer opted out of marketing messages")
    if not is_free_form(message) or windows.is_open(sender, customer):
        return Submission(message, priority, phone_number_id=sender, customer=known)
    if fallback is None:
        raise Refused(
            "window_closed",
            address_,
            "the customer has not written in 24 hours: only a template message can be sent",
        )
    note = {"template_fallback": fallback.name, "replaced_type": message.get("type")}
    return Submission(fallback.message_for(message), priority, note, sender, known)


def accept(
    submissions: Sequence[Submission],
    *,
    store: MessageStore,
    enqueue_all: EnqueueAll,
    idempotency: IdempotencyStore | None = None,
    idempotency_key: str | None = None,
    digest: str | None = None,
    caps: LaneCaps | None = None,
) -> Accepted:
    """Record and enqueue ``submissions``; with an idempotency key, at most once per key.

    Raises ``IdempotencyConflict`` / ``IdempotencyInProgress`` for a key already used,
    :class:`QueueFull` if a lane is at its cap (a repeat of an accepted request is still
    answered), and whatever the broker raised if it refused the tasks (then nothing is kept).
    """
    ids = [uuid.uuid4().hex for _ in submissions]
    keyed = idempotency is not None and idempotency_key is not None and digest is not None
    if keyed:
        earlier = idempotency.claim(idempotency_key, digest, ids)
        if earlier is not None:
            return Accepted(earlier.ids, replayed=True)
    try:
        if caps is not None:
            caps.check(store, submissions)
    except QueueFull:
        if keyed:
            idempotency.release(idempotency_key)
        raise
    try:
        store.create_many(
            [
                NewMessage(
                    i,
                    s.message,
                    s.priority,
                    idempotency_key,
                    s.note,
                    s.phone_number_id,
                    s.customer,
                )
                for i, s in zip(ids, submissions, strict=True)
            ]
        )
        enqueue_all([(i, s.priority) for i, s in zip(ids, submissions, strict=True)])
    except Exception:
        # The client is told it failed, so nothing it could not find again may stay queued.
        store.delete(*ids)
        if keyed:
            idempotency.release(idempotency_key)
        raise
    if keyed:
        idempotency.complete(idempotency_key, digest, ids)
    return Accepted(ids)


def statuses(store: MessageStore, ids: Sequence[str]) -> list[str]:
    """The current status of each message, for the answer to a repeated request."""
    out = []
    for message_id in ids:
        record = store.get(message_id)
        out.append(record.status if record else QUEUED)
    return out
