"""Meta's status webhooks, applied to the outbound messages they concern.

A status only moves a message forward (``sent``, ``delivered``, ``read``: a late ``sent`` never
undoes ``read``), and ``failed`` dead-letters it with Meta's error.

Meta's webhooks can overtake its answer to the send: a status may arrive before the send worker
has recorded the message's ``wamid``, when nothing yet says which message it concerns. Such a
status is held in Redis for a while (``keys.EARLY_STATUSES``) and applied when the send records
the ``wamid`` (:func:`record_sent`), instead of being dropped, which left the message at ``sent``
for good.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from app.campaigns import count_campaign_status, count_status
from app.delivery.dead_letters import DeadLetterStore, dead_letter_failed_status
from app.delivery.messages import DELIVERED, FAILED, READ, SENT, MessageStore
from app.events.delivery import emit
from app.events.subscriptions import MESSAGE_STATUS, SubscriptionStore
from app.whatsapp.webhook import Status

log = logging.getLogger(__name__)

UNREAD = object()
"""A message's campaign entry not read yet (None: read, and there is none)."""

WEBHOOK_STATUSES = {"sent": SENT, "delivered": DELIVERED, "read": READ, "failed": FAILED}
"""Meta's status names and the message statuses they move to; others are ignored."""


def apply_status(store: MessageStore, status: Status) -> bool:
    """Record a status webhook on the message it concerns; False if it changed nothing (out of
    date, or of a kind not tracked) or is held until its ``wamid`` is recorded."""
    if status.status not in WEBHOOK_STATUSES:
        log.info("status %s of %s ignored", status.status, status.id)
        return False
    pricing = status.pricing
    category = str(pricing.category).lower() if pricing and pricing.category else None
    held = {"status": status.status, "errors": status.errors, "pricing_category": category}
    message_id, campaign = store.target_of_status(status.id, held)
    if message_id is None:
        log.info("status %s for %s held until its send is recorded", status.status, status.id)
        return False
    return _apply(
        store,
        message_id,
        wamid=status.id,
        status=status.status,
        errors=status.errors,
        pricing_category=category,
        campaign=campaign,
    )


def record_sent(
    store: MessageStore,
    message_id: str,
    wamid: str,
    along: Callable[[Any], None] | None = None,
) -> int:
    """Record Meta's ``wamid`` for the message, then apply the statuses that came before it;
    returns how many there were. ``along`` queues more commands on the recording's pipeline
    (see :meth:`MessageStore.record_wamid_along`).

    The event subscriptions are read in the same round trip as the wamid, for the ``sent``
    event: a subscription created or deleted meanwhile is seen as it would be a moment later.
    """

    def read_along(pipe: Any) -> None:
        SubscriptionStore.read_in(pipe)
        if along is not None:
            along(pipe)

    early, (subscriptions, *_) = store.record_wamid_along(message_id, wamid, read_along)
    # Meta's answer is the message's "sent": its webhook, later, moves nothing and says nothing.
    _announce(store, message_id, wamid, SENT, [], subscriptions)
    return _apply_held(store, message_id, wamid, early)


def apply_early_statuses(store: MessageStore, message_id: str, wamid: str) -> int:
    """Apply the held statuses of ``wamid`` (recorded already) to its message; how many."""
    return _apply_held(store, message_id, wamid, store.early_statuses(wamid))


def _apply_held(
    store: MessageStore, message_id: str, wamid: str, early: list[dict[str, Any]]
) -> int:
    """Apply ``early``, the held statuses of ``wamid``. They are forgotten only once applied, so
    a run that dies in between leaves them for the next run of the send task; applying one twice
    changes nothing."""
    for item in early:
        _apply(
            store,
            message_id,
            wamid=wamid,
            status=item["status"],
            errors=item.get("errors") or [],
            pricing_category=item.get("pricing_category"),
            early=True,
        )
    if early:
        log.info(
            "message %s: %d statuses that came before its wamid applied", message_id, len(early)
        )
        store.forget_early_statuses(wamid)
    return len(early)


def _apply(
    store: MessageStore,
    message_id: str,
    *,
    wamid: str,
    status: str,
    errors: list[dict[str, Any]],
    pricing_category: str | None = None,
    early: bool = False,
    campaign: str | None | object = UNREAD,
) -> bool:
    # A campaign's counts take every status, even one its message is already past.
    if campaign is UNREAD:
        count_status(store.redis, message_id, status, pricing_category)
    else:
        count_campaign_status(store.redis, campaign, status, pricing_category)
    target = WEBHOOK_STATUSES[status]
    if target == FAILED:
        # Meta gave up after accepting it: keep Meta's error and dead-letter it for replay.
        applied = dead_letter_failed_status(store, DeadLetterStore(store.redis), message_id, errors)
    else:
        note = {"arrived_before_wamid": True} if early else None
        applied = store.advance(message_id, target, note=note)
    if applied and target == READ:
        store.shorten_wamid_index(wamid)  # the last status a message can take
    if applied:
        _announce(store, message_id, wamid, status, errors)
    return applied


def _announce(
    store: MessageStore,
    message_id: str,
    wamid: str,
    status: str,
    errors: list[dict[str, Any]],
    subscriptions: list[str] | Exception | None = None,
) -> None:
    """The ``message.status`` event of a status that moved its message (one per status: a
    repeat of the webhook moves nothing and announces nothing); ``subscriptions``: their read,
    if it was made along (:meth:`SubscriptionStore.read_in`)."""

    def data() -> dict[str, Any]:
        record = store.get(message_id, history=False)  # its body may be gone once final
        return {
            "message_id": message_id,
            "wamid": wamid,
            "status": status,
            "phone_number_id": record.phone_number_id if record is not None else None,
            "to": (record.to or None) if record is not None else None,
            "recipient": record.recipient if record is not None else None,
            "errors": errors,
        }

    emit(
        store.redis,
        MESSAGE_STATUS,
        data,
        key=f"{message_id}:{status}",
        read=subscriptions,
    )
