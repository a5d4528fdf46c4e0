"""The inbound flow, one step per task, each a plain function that is safe to run twice.

1. ``handle_webhook`` (inbound queue): apply statuses; for each new message (claimed once),
   describe it, send the read receipt with the typing indicator, fetch its media, and hand the
   turn to the context queue.
2. ``record_turn`` (context queue): add the turn to the conversation and the profile atomically;
   a customer asking for a person starts a handoff; then the turn goes on to be answered.
3. ``answer_turn`` (inbound queue): rank the context, ask the responder (cache, timeout, fallback),
   record the reply and queue it on the high-priority lane.
4. ``record_reply`` (context queue): add the business's reply to the conversation.

With a local responder, steps 2 to 4 run in step 1's task, one after the other (see
``tasks.inbound.record_and_answer``); each function below is the same either way.

Each message and status of a webhook is a unit of work of its own: one that cannot be read, or
whose processing fails unexpectedly, becomes an inbound dead letter (see
:mod:`app.delivery.dead_letters`) and its siblings are processed all the same. Redis failures are
the exception: they are transient, so they propagate and the task runs again.
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.exceptions import RedisError

from app import keys
from app.conversations.context import BUSINESS, ConversationStore, Exchange
from app.conversations.customers import CustomerBook
from app.conversations.handoff import BY_CUSTOMER, Handoff, HandoffStore, Notify, announce
from app.conversations.optout import KEYWORD, OptOutBook, OptOutPolicy, apply_preference
from app.conversations.ranking import rank_context
from app.conversations.responders.interface import Inbound
from app.conversations.responders.rules import HANDOFF_REPLIES, wants_human
from app.conversations.responders.service import ReplyService
from app.conversations.text import detect_language
from app.conversations.turns import CustomerTurn, describe
from app.delivery import dead_letters as dl
from app.delivery.dead_letters import DeadLetterStore
from app.delivery.messages import MessageStore
from app.delivery.pricing import PricedMessage, count_pricing
from app.delivery.statuses import apply_status
from app.delivery.window import CustomerWindows
from app.events.delivery import emit
from app.events.subscriptions import MESSAGE_RECEIVED
from app.templates import TEMPLATE_FIELDS, TemplateStore, apply_update
from app.whatsapp.webhook import (
    FIELD_MESSAGES,
    OBJECT_WHATSAPP,
    Message,
    Status,
    parse_webhook,
)

log = logging.getLogger(__name__)

REPLY_NAMESPACE = uuid.UUID("5f0c6c1e-5b1a-4e0a-9a59-0f2b8a1d7c11")
"""Namespace of reply ids: the reply to a given inbound message always has the same id, so a
message processed twice still produces one reply."""

EnqueueSend = Callable[[str, str], None]
"""Puts a send task for (message_id, priority lane) on the broker."""

EnqueueTurn = Callable[[dict[str, Any]], None]
"""Puts a task for one turn (``CustomerTurn.to_dict()``) on the broker."""

EnqueueReply = Callable[[dict[str, Any]], None]
"""Puts the task that records a reply (an ``Exchange`` dict, with the conversation's ids)."""

MarkRead = Callable[[str, str, bool], None]
"""Marks an inbound message read, as (the business number it was sent to, its id, typing): the
flag asks for the typing indicator too."""

FetchMedia = Callable[[CustomerTurn], CustomerTurn]
"""Downloads and stores a turn's media, returning the turn with where it went (or why not)."""


@dataclass
class InboundResult:
    """What one webhook delivery led to, for logs and tests."""

    accepted: list[str] = field(default_factory=list)
    """Message ids handed to the context queue."""
    duplicates: list[str] = field(default_factory=list)
    statuses_applied: int = 0
    statuses_ignored: int = 0
    dead_lettered: list[str] = field(default_factory=list)
    """Inbound dead letters this delivery led to (a part that could not be read or processed)."""
    customers: dict[str, str] = field(default_factory=dict)
    """The customer key of each message, by message id (for activity metrics)."""
    opted_out: list[str] = field(default_factory=list)
    """Messages that were an opt-out keyword: confirmed, not answered."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "statuses_applied": self.statuses_applied,
            "statuses_ignored": self.statuses_ignored,
            "dead_lettered": self.dead_lettered,
            "opted_out": self.opted_out,
        }


def reply_id(inbound_wamid: str) -> str:
    """The gateway message id of the reply to ``inbound_wamid``."""
    return uuid.uuid5(REPLY_NAMESPACE, inbound_wamid).hex


def handle_webhook(
    payload: dict[str, Any],
    *,
    redis_client: redis.Redis,
    enqueue_turn: EnqueueTurn,
    mark_read: MarkRead | None = None,
    fetch_media: FetchMedia | None = None,
    owner: str = "",
    opt_out: OptOutPolicy | None = None,
    enqueue_send: EnqueueSend | None = None,
    observe_priced: Callable[[PricedMessage], None] | None = None,
    learnt: dict | None = None,
) -> InboundResult:
    """Apply every status and pass every new message of one webhook delivery on to be recorded.

    Template webhooks update the kept templates, ``user_preferences`` ones opt customers out of
    marketing or back in, and a message that is an opt-out keyword of ``opt_out`` opts its
    customer out and is confirmed once (sent with ``enqueue_send``) instead of answered.
    ``observe_priced`` is told of each message Meta priced, counted once. ``learnt`` is shared by
    deliveries applied together, so each learns a customer's ids once (see
    :meth:`CustomerBook.learn_event`).

    ``owner`` identifies the delivery being processed (the Celery task id, which a retry or a
    redelivery keeps), so that the same delivery can take up a message it had claimed before
    failing, while any other delivery of that message skips it as a duplicate.
    """
    event = parse_webhook(payload)
    dead_letters = DeadLetterStore(redis_client)
    result = InboundResult()

    def dead_letter(
        kind: str, raw: Any, reason: str, webhook: dict[str, Any], error: dict[str, Any]
    ) -> None:
        letter = dead_letters.add_inbound(
            kind, reason, raw, task=WEBHOOK_TASK, payload=webhook, source=owner or None, error=error
        )
        result.dead_lettered.append(letter.id)

    for part in event.malformed:
        webhook = part_webhook(part.kind, part.raw, part.metadata, part.contacts)
        dead_letter(part.kind, part.raw, dl.MALFORMED, webhook, {"message": part.reason})
    # Every id Meta sends goes into the contact book first, so each message finds its customer.
    result.customers = CustomerBook(redis_client).learn_event(event, learnt)
    store = MessageStore(redis_client)
    templates = TemplateStore(redis_client)
    for change in event.changes:
        if change.field in TEMPLATE_FIELDS:
            apply_update(templates, change.field, change.value)
    opt_outs = OptOutBook(redis_client)
    book = CustomerBook(redis_client)
    for preference in event.user_preferences:
        apply_preference(opt_outs, book, preference)
    for status in event.statuses:
        try:
            count_pricing(redis_client, status, observe_priced)
            applied = apply_status(store, status)
        except RedisError:
            raise
        except Exception as exc:  # noqa: BLE001 - this status is kept; the others go on
            dead_letter("status", status.raw, dl.INTERNAL_ERROR, _webhook_of(status), error_of(exc))
            continue
        if applied:
            result.statuses_applied += 1
        else:
            result.statuses_ignored += 1
    windows = CustomerWindows(redis_client)
    for message in event.messages:
        customer = result.customers.get(message.id)
        if customer is None:
            error = {"message": "the message names no customer (no phone, no user id)"}
            dead_letter("message", message.raw, dl.MALFORMED, _webhook_of(message), error)
            continue
        claimed, handoff = arrive(redis_client, windows, message, customer, owner)
        if not claimed:
            result.duplicates.append(message.id)
            continue
        try:
            turn = describe(message, customer)
            log.info("inbound %s message %s", turn.type, turn.id)
            if opt_out is not None and turn.type == "text" and opt_out.is_opt_out(turn.text):
                confirm_opt_out(redis_client, opt_outs, turn, opt_out, enqueue_send)
                finish(redis_client, message.id)
                result.opted_out.append(message.id)
                continue
            if mark_read is not None and turn.type not in ("reaction", "system"):
                typing = turn.expects_reply and not handoff
                send_read_receipt(mark_read, turn.phone_number_id, turn.id, typing)
            if fetch_media is not None and "media" in turn.structured:
                turn = fetch_media(turn)
        except RedisError:
            release(redis_client, message.id)  # let the task's retry process it again
            raise
        except Exception as exc:  # noqa: BLE001 - this message is kept; the others go on
            error = error_of(exc)
            dead_letter("message", message.raw, dl.INTERNAL_ERROR, _webhook_of(message), error)
            finish(redis_client, message.id)  # handled: a replay releases it
            continue
        try:
            enqueue_turn(turn.to_dict())
        except Exception:
            release(redis_client, message.id)  # the broker failed: let the task's retry resend it
            raise
        finish(redis_client, message.id)
        result.accepted.append(message.id)
    return result


def confirm_opt_out(
    redis_client: redis.Redis,
    opt_outs: OptOutBook,
    turn: CustomerTurn,
    policy: OptOutPolicy,
    enqueue_send: EnqueueSend | None,
) -> str | None:
    """Opt the turn's customer out of marketing and queue the one confirmation; its message id,
    or None when the customer had opted out before (by another message)."""
    newly = opt_outs.opt_out(turn.phone_number_id, turn.customer, KEYWORD, turn.at, turn.id)
    earlier = opt_outs.get(turn.phone_number_id, turn.customer)
    # This same message again (a retry after a crash) still gets its confirmation, once.
    if not newly and (earlier is None or earlier.message_id != turn.id):
        log.info("message %s: customer already opted out, not confirmed again", turn.id)
        return None
    message_id = reply_id(turn.id)
    payload = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        **turn.address,
        "type": "text",
        "text": {"body": policy.confirmation},
    }
    MessageStore(redis_client).create(
        message_id, payload, priority="high", phone_number_id=turn.phone_number_id
    )
    if enqueue_send is not None:
        enqueue_send(message_id, "high")
    log.info("message %s: customer opted out of marketing; confirmation %s", turn.id, message_id)
    return message_id


WEBHOOK_TASK = "inbound.process_webhook"
"""The task that replays an inbound message or status: a webhook with that part alone."""


def part_webhook(
    kind: str, raw: Any, metadata: dict[str, Any], contacts: list[Any]
) -> dict[str, Any]:
    """A webhook that carries one message or status (``kind``) alone, as Meta would send it."""
    value: dict[str, Any] = {"messaging_product": "whatsapp", "metadata": metadata}
    if contacts:
        value["contacts"] = contacts
    value["messages" if kind == "message" else "statuses"] = [raw]
    return {
        "object": OBJECT_WHATSAPP,
        "entry": [{"id": "", "changes": [{"field": FIELD_MESSAGES, "value": value}]}],
    }


def _webhook_of(unit: Message | Status) -> dict[str, Any]:
    metadata = {
        "display_phone_number": unit.metadata.display_phone_number,
        "phone_number_id": unit.metadata.phone_number_id,
    }
    if isinstance(unit, Message):
        contacts = [unit.contact.raw] if unit.contact is not None else []
        return part_webhook("message", unit.raw, metadata, contacts)
    return part_webhook("status", unit.raw, metadata, [c.raw for c in unit.contacts])


def error_of(exc: BaseException) -> dict[str, Any]:
    """An unexpected error as a dead letter keeps it: its class, its message and where it was
    raised. Kept with the dead letter in Redis, never logged: the message may quote customer data."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else None
    return {"class": type(exc).__name__, "message": str(exc)[:500], "code": None, "where": where}


def send_read_receipt(
    mark_read: MarkRead, phone_number_id: str, message_id: str, typing: bool
) -> None:
    """Mark the message read (and show typing); a failure costs the receipt, never the message."""
    try:
        mark_read(phone_number_id, message_id, typing)
    except Exception as exc:  # noqa: BLE001 - a receipt is a courtesy, the reply is what matters
        log.warning("read receipt for %s not sent: %s", message_id, type(exc).__name__)


def record_turn(
    turn_data: dict[str, Any],
    *,
    redis_client: redis.Redis,
    enqueue_answer: EnqueueTurn,
    notify_handoff: Notify,
) -> bool:
    """Add the customer's turn to the conversation and profile and announce it
    (``message.received``); a request for a person starts a handoff (announced with
    ``notify_handoff``). Then hand the turn on to be answered if it expects an answer. False if
    it was already recorded (and it is handed on again all the same: answering is idempotent)."""
    turn = CustomerTurn.from_dict(turn_data)
    recorded = ConversationStore(redis_client).record(
        turn.phone_number_id,
        turn.customer,
        turn.exchange(),
        text="" if turn.type in ("reaction", "system", "unsupported") else turn.text,
        products=turn.products,
        choice_id=turn.choice_id,
    )
    # Announced on every run, under the same event id: a run that died after recording still
    # announces it, and receivers drop the repeat.
    emit(
        redis_client,
        MESSAGE_RECEIVED,
        lambda: received_event(turn),
        conversation_id=turn.customer,
        key=turn.id,
    )
    if not turn.expects_reply:
        return recorded
    handoffs = HandoffStore(redis_client)
    if wants_human(turn.text):
        handoff, started = handoffs.start(
            turn.phone_number_id, turn.customer, by=BY_CUSTOMER, message_id=turn.id
        )
        if started:
            log.info("conversation %s handed to a person at the customer's request", turn.customer)
            announce(redis_client, turn.phone_number_id, turn.customer, handoff, notify_handoff)
    else:
        handoff = handoffs.get(turn.phone_number_id, turn.customer)
    # Decided now, not when answering: a message that arrived while a person had the
    # conversation stays theirs even if the handoff ends before the answer step runs.
    if handoff is not None and handoff.message_id != turn.id:
        log.info("conversation %s is with a person: %s not answered", turn.customer, turn.id)
        return recorded
    enqueue_answer(turn.to_dict())
    return recorded


def received_event(turn: CustomerTurn) -> dict[str, Any]:
    """The data of a turn's ``message.received`` event."""
    return {
        "message_id": turn.id,
        "phone_number_id": turn.phone_number_id,
        "customer": turn.customer,
        "wa_id": turn.wa_id or None,
        "user_id": turn.user_id,
        "name": turn.name,
        "type": turn.type,
        "text": turn.text,
        "timestamp": turn.at,
        "replied_to": turn.replied_to,
        "structured": turn.structured,
    }


def answer_turn(
    turn_data: dict[str, Any],
    *,
    redis_client: redis.Redis,
    service: ReplyService,
    enqueue_send: EnqueueSend,
    enqueue_reply: EnqueueReply,
    context_messages: int,
) -> str | None:
    """Ask the responder about the turn, with its ranked context, and queue the reply on the high
    lane; the reply's message id, or None when nothing is sent (handoff, or no reply)."""
    turn = CustomerTurn.from_dict(turn_data)
    store = MessageStore(redis_client)
    conversations = ConversationStore(redis_client)
    message_id = reply_id(turn.id)
    # What answering reads, in one round trip: the reply if there is one already, the profile,
    # the handoff and the conversation.
    reads = redis_client.pipeline(transaction=False)
    reads.hgetall(store.key(message_id))
    reads.get(conversations.profile_key(turn.phone_number_id, turn.customer))
    reads.get(HandoffStore.key(turn.phone_number_id, turn.customer))
    reads.get(conversations.key(turn.phone_number_id, turn.customer))
    raw_reply, raw_profile, raw_handoff, raw_conversation = reads.execute()
    existing = store.decode(raw_reply)
    if existing is not None:
        # Answered before a crash: sending and recording are idempotent, so finish both. A reply
        # whose body is gone was delivered long since, and recorded with it.
        if existing.payload is not None:
            body = existing.payload["text"]["body"]
            enqueue_reply(_reply_record(turn, message_id, body, "retry"))
        enqueue_send(message_id, existing.priority)
        return message_id
    profile = conversations.decode_profile(raw_profile)
    language = detect_language(turn.text, default=profile.language if profile else None)
    handoff = HandoffStore.decode(raw_handoff)
    if handoff is not None:
        if handoff.message_id != turn.id:
            log.info("conversation %s is with a person: %s not answered", turn.customer, turn.id)
            return None
        body, source = HANDOFF_REPLIES[language or "es"], "handoff"
    else:
        context = rank_context(
            conversations.decode(raw_conversation),
            turn.text,
            exclude_id=turn.id,
            limit=context_messages,
        )
        inbound = Inbound(
            wa_id=turn.wa_id,
            customer=turn.customer,
            user_id=turn.user_id,
            text=turn.text,
            name=turn.name,
            type=turn.type,
            structured=turn.structured,
            language=language,
            context=context,
            profile=profile,
            message_id=turn.id,
            phone_number_id=turn.phone_number_id,
        )
        reply = service.reply(inbound)
        if not reply.text:
            return None
        body, source = reply.text, reply.source
    payload = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        # A customer whose phone Meta withholds is answered by BSUID alone.
        **turn.address,
        "type": "text",
        "text": {"body": body},
        "context": {"message_id": turn.id},
    }
    # Created once; a second pass (after a crash) finds it and enqueues again: the send is idempotent.
    # Sent from the number the customer wrote to: the window and the conversation are that number's.
    store.create(
        message_id,
        payload,
        priority="high",
        phone_number_id=turn.phone_number_id,
        customer=turn.customer,
    )
    enqueue_reply(_reply_record(turn, message_id, body, source))
    enqueue_send(message_id, "high")
    return message_id


def record_reply(reply_data: dict[str, Any], *, redis_client: redis.Redis) -> bool:
    """Add the business's reply to the customer's conversation; False if it was already there."""
    exchange = Exchange.from_dict(reply_data["exchange"])
    return ConversationStore(redis_client).record(
        # "wa_id": a reply queued before the contact book, when the phone was the key.
        reply_data["phone_number_id"],
        reply_data.get("customer") or reply_data["wa_id"],
        exchange,
    )


def _reply_record(turn: CustomerTurn, message_id: str, body: str, source: str) -> dict[str, Any]:
    exchange = Exchange(
        id=message_id,
        role=BUSINESS,
        type="text",
        text=body,
        at=max(time.time(), turn.at),  # after the question, even with a skewed clock
        data={"in_reply_to": turn.id, "source": source},
    )
    return {
        "phone_number_id": turn.phone_number_id,
        "customer": turn.customer,
        "exchange": exchange.to_dict(),
    }


def arrive(
    redis_client: redis.Redis,
    windows: CustomerWindows,
    message: Message,
    customer: str,
    owner: str,
) -> tuple[bool, Handoff | None]:
    """Reopen the customer's 24-hour window (every message does, a duplicate too), :func:`claim`
    the message for ``owner`` and read the conversation's handoff (for the typing indicator), in
    one round trip; whether it was claimed, and the handoff."""
    phone_number_id = message.metadata.phone_number_id
    key = keys.INBOUND_MESSAGE.format(wamid=message.id)
    marker = f"processing:{owner}"
    pipe = redis_client.pipeline(transaction=False)
    windows.queue_inbound(pipe, phone_number_id, customer, message.timestamp)
    pipe.set(key, marker, nx=True, ex=keys.INBOUND_PROCESSING_TTL)
    pipe.get(key)  # who holds it, when the SET found it taken
    pipe.get(HandoffStore.key(phone_number_id, customer))
    window, taken, holder, handoff = pipe.execute(raise_on_error=False)
    failed = next((r for r in (window, taken, holder, handoff) if isinstance(r, Exception)), None)
    if failed is not None:
        if taken is True:
            release(redis_client, message.id)  # as if the claim had not been reached
        raise failed
    return bool(taken) or (bool(owner) and holder == marker), HandoffStore.decode(handoff)


def claim(redis_client: redis.Redis, wamid: str, owner: str = "") -> bool:
    """Take ``wamid`` for ``owner``; False if it is done, or being processed by another owner."""
    key = keys.INBOUND_MESSAGE.format(wamid=wamid)
    marker = f"processing:{owner}"
    if redis_client.set(key, marker, nx=True, ex=keys.INBOUND_PROCESSING_TTL):
        return True
    return bool(owner) and redis_client.get(key) == marker


def finish(redis_client: redis.Redis, wamid: str) -> None:
    """Mark ``wamid`` done for as long as Meta may redeliver it."""
    redis_client.set(keys.INBOUND_MESSAGE.format(wamid=wamid), "done", ex=keys.INBOUND_DONE_TTL)


def release(redis_client: redis.Redis, wamid: str) -> None:
    """Give up a claim after a failure, so a retry can process the message."""
    redis_client.delete(keys.INBOUND_MESSAGE.format(wamid=wamid))
