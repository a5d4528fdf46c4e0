"""Sending one recorded message through the Graph API, at most once in effect.

:func:`send_recorded_message` is everything a send task does, without Celery: it takes the
message's send lock, asks the rate limiter for a token, sends, records Meta's ``wamid``, and on
failure either schedules a retry (by returning how long to wait) or dead-letters the message with
its reason. The task only turns a returned delay into a Celery retry.

Exactly once where it can be had: Celery delivers a task at least once, so the ``wamid`` is
recorded before the task is acknowledged and checked before sending, and a lock keeps two
deliveries of one task from sending side by side. The one window left for a duplicate is between
Meta accepting the message and that record: a worker killed in those microseconds, or Meta's
answer lost on the way back (a timeout after Meta had accepted), leaves a message Meta has but the
gateway does not know it has, and the retry sends it again. Meta's API has no idempotency key to
close that window.

Lost tasks: the broker can lose a task outright (kombu's Redis transport pops a task before it
records it as unacknowledged, so a worker killed in between loses it). Every message waiting to be
sent is therefore indexed with the time its next run is due (``MessageStore.expect_run``), and
:func:`recover_lost_sends` enqueues again the ones long overdue. An extra task is harmless: the
lock and the ``wamid`` check make it a no-op if the original turns up after all.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from app.conversations.customers import CustomerBook
from app.delivery import dead_letters as dl
from app.delivery.dead_letters import DeadLetterStore
from app.delivery.messages import QUEUED, TERMINAL, MessageRecord, MessageStore
from app.delivery.ratelimit import SendRateLimiter
from app.delivery.retry import RetryPolicy
from app.delivery.statuses import apply_early_statuses, record_sent
from app.ops import metrics, observe
from app.whatsapp.client import GraphClient
from app.whatsapp.errors import (
    GraphAPIError,
    PermanentError,
    ThrottledError,
    TransientError,
)

log = logging.getLogger(__name__)


class SendOutcome(StrEnum):
    """What :func:`send_recorded_message` did."""

    SENT = "sent"
    ALREADY_SENT = "already_sent"
    FINISHED = "finished"
    MISSING = "missing"
    RATE_LIMITED = "rate_limited"
    LOCKED = "locked"
    RETRY = "retry"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True)
class SendResult:
    """The outcome, and the seconds to wait before running again when there is one."""

    outcome: SendOutcome
    retry_in: float | None = None


ClientFor = Callable[[str | None], GraphClient]
"""The Graph client of a sending number (None: the configured one); raises
:class:`~app.whatsapp.errors.ConfigurationError` for a number the gateway has no token for."""


@dataclass
class Sender:
    """What sending needs: the stores, each number's client, the limiter and the policy."""

    store: MessageStore
    dead_letters: DeadLetterStore
    client_for: ClientFor
    """Chosen per message, from the number on its record."""
    limiter: SendRateLimiter
    policy: RetryPolicy
    lock_ttl: float
    """Seconds the send lock lives: the task's hard time limit."""


@dataclass(frozen=True)
class Claim:
    """A message ready for its Graph call: its send lock held (``token``), a rate-limit token
    taken, its attempt recorded. :func:`complete_send` makes the call and lets go of the lock."""

    message_id: str
    token: str
    client: GraphClient
    payload: dict
    attempt: int


def send_recorded_message(sender: Sender, message_id: str) -> SendResult:
    """Send the message ``message_id`` unless Meta already has it; see the module docstring."""
    claim = claim_send(sender, message_id)
    return claim if isinstance(claim, SendResult) else complete_send(sender, claim)


def claim_send(sender: Sender, message_id: str) -> Claim | SendResult:
    """Everything before the Graph call: the lock, the record, the number's client and the rate
    limiter. A :class:`Claim` if the message is to be sent now, else what became of it."""
    store = sender.store
    token = uuid.uuid4().hex
    locked, record = store.lock_and_get(message_id, token, sender.lock_ttl)
    if not locked:
        # Another delivery of this task is sending it, or died doing so: come back after it,
        # unless it has already finished.
        if nothing_to_send(record):
            return _finished(record)
        wait = sender.policy.bounded(store.lock_remaining(message_id) or 1.0)
        store.expect_run(message_id, time.time() + wait)
        return SendResult(SendOutcome.LOCKED, wait)
    claim = None
    try:
        if nothing_to_send(record):
            if record is not None and record.wamid:
                # A run that died right after recording the wamid left these to apply.
                apply_early_statuses(store, message_id, record.wamid)
            return _finished(record)
        try:
            client = sender.client_for(record.phone_number_id)
        except GraphAPIError as exc:
            # No token for its number (removed, or keys missing): the operator must act.
            return handle_send_failure(sender, message_id, exc)
        # The limits are Meta's per sending number, so each number has its own bucket; the pair
        # bucket is the customer's, whether this message names them by phone or by BSUID.
        customer = record.customer or CustomerBook(store.redis).key_for(
            client.phone_number_id, record.to or record.recipient or ""
        )
        wait = sender.limiter.acquire(client.phone_number_id, customer, record.priority)
        if wait > 0:
            metrics.record_rate_limit_deferral()
            metrics.record_retry("rate_limited")
            wait = sender.policy.bounded(wait)
            store.expect_run(message_id, time.time() + wait)
            return SendResult(SendOutcome.RATE_LIMITED, wait)
        attempt = record.attempts + 1
        # Running now; a deferral after the answer moves the expectation to when it comes back.
        store.mark_sending(message_id, attempt)
        claim = Claim(message_id, token, client, record.payload, attempt)
        return claim
    finally:
        if claim is None:
            store.unlock_send(message_id, token)


def complete_send(sender: Sender, claim: Claim) -> SendResult:
    """The Graph call of a claimed message, and its outcome recorded; the lock let go (with the
    wamid, when Meta accepted it)."""
    message_id = claim.message_id
    recorded = False
    try:
        try:
            result = claim.client.send_message(claim.payload)
        except GraphAPIError as exc:
            return handle_send_failure(sender, message_id, exc)
        # From Meta's answer to this line is the one window for a duplicate (module docstring).
        # Recording the wamid lets go of the lock, and counts the send for the alerts, in the
        # same round trip.
        count = observe.sent_counter(sender.store.redis)
        record_sent(sender.store, message_id, result.wamid, along=count)
        recorded = True
        observe.send_succeeded(claim.payload.get("type"), windowed=count is not None)
        log.info(
            "message %s accepted by Meta as %s (attempt %d)",
            message_id,
            result.wamid,
            claim.attempt,
        )
        return SendResult(SendOutcome.SENT)
    finally:
        if not recorded:
            sender.store.unlock_send(message_id, claim.token)


def nothing_to_send(record: MessageRecord | None) -> bool:
    """Whether no send is due for ``record``: gone, already with Meta, or dead-lettered."""
    return record is None or bool(record.wamid) or record.status in TERMINAL


def _finished(record: MessageRecord | None) -> SendResult:
    """The result for a message there is nothing (more) to send for."""
    if record is None:
        log.warning("a send task ran for a message with no record; nothing to send")
        return SendResult(SendOutcome.MISSING)
    if record.wamid:
        return SendResult(SendOutcome.ALREADY_SENT)
    return SendResult(SendOutcome.FINISHED)


def handle_send_failure(sender: Sender, message_id: str, exc: GraphAPIError) -> SendResult:
    """Retry a passing failure within its budget; dead-letter everything else, with its reason."""
    error = exc.to_dict()
    result = _retry_or_dead_letter(sender, message_id, exc, error)
    observe.send_failed(sender.store, message_id, exc, gave_up=result.retry_in is None)
    return result


def _retry_or_dead_letter(
    sender: Sender, message_id: str, exc: GraphAPIError, error: dict
) -> SendResult:
    store, policy = sender.store, sender.policy
    if isinstance(exc, ThrottledError):
        throttles = store.count_throttle(message_id)
        if throttles >= policy.max_throttled:
            return _dead_letter(sender, message_id, dl.THROTTLED, error)
        delay = policy.after_throttle(exc.retry_after, throttles)
    elif isinstance(exc, TransientError):
        failures = store.count_failure(message_id)
        if failures >= policy.max_attempts:
            return _dead_letter(sender, message_id, dl.RETRIES_EXHAUSTED, error)
        delay = policy.backoff(failures)
    else:
        if not isinstance(exc, PermanentError):
            # A configuration error: every message will fail alike until an operator acts.
            log.error("Graph API configuration problem, operator action needed: %s", exc)
        return _dead_letter(sender, message_id, dl.reason_for(exc), error)
    log.info("message %s: %s; retrying in %.2fs", message_id, exc, delay)
    store.expect_run(message_id, time.time() + delay)
    store.advance(
        message_id, QUEUED, error=error, note={"retry_in": round(delay, 3), "code": exc.code}
    )
    return SendResult(SendOutcome.RETRY, delay)


def _dead_letter(sender: Sender, message_id: str, reason: str, error: dict | None) -> SendResult:
    sender.dead_letters.add(sender.store, message_id, reason, error)
    return SendResult(SendOutcome.DEAD_LETTERED)


def recover_lost_sends(
    store: MessageStore,
    enqueue: Callable[[str, str], None],
    lane_depth: Callable[[str], int],
    grace: float,
    now: float | None = None,
) -> list[str]:
    """Enqueue again the sends overdue by more than ``grace`` seconds; the ids enqueued.

    ``grace`` is past the broker's visibility timeout, so this does not race the broker's own
    redelivery of a killed worker's tasks. A message whose lane still has tasks waiting is left alone: it may
    simply not have been reached yet, and doubling a campaign's backlog would help no one.
    """
    now = now or time.time()
    recovered = []
    for message_id in store.overdue(now - grace):
        record = store.get(message_id)
        if nothing_to_send(record):
            store.send_ended(message_id)
            continue
        if lane_depth(record.priority) > 0:
            continue
        enqueue(message_id, record.priority)
        store.expect_run(message_id, now)
        recovered.append(message_id)
    if recovered:
        log.warning("%d sends were lost by the broker and are enqueued again", len(recovered))
    return recovered
