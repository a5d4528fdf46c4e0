"""The dead-letter store: every message the gateway gave up on, with why, ready to replay.

Two directions share it. An ``outbound`` entry is a message the gateway could not send (its id is
the gateway's message id): the full message, Meta's error (code, title, details), the attempts,
the first and last failure times and the reason. An ``inbound`` entry is one unit of inbound work
that could not be processed (a webhook's message or status that could not be read, or a turn
whose step failed unexpectedly): the raw part, the reason, the task that replay runs again and
what it hands that task (for a message or status, the webhook it came in with that part alone).
An ``event`` entry is an event a subscriber did not take (see :mod:`app.events`): replay
delivers it again, with the same event id. Every entry but an event's is announced by a
``dead_letter.created`` event.
The raw part is customer data: it stays here, like messages, and never goes to a log. Entries
are kept in Redis until an operator replays or purges them. A sorted set scored by the last failure time orders
them; filters by reason and error code scan it, which is fine for the hundreds or thousands of
entries a healthy deployment holds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from app import keys
from app.delivery.messages import DEAD_LETTERED, FAILED, MessageRecord, MessageStore
from app.events.delivery import emit
from app.events.subscriptions import DEAD_LETTER_CREATED
from app.whatsapp.errors import (
    ConfigurationError,
    GraphAPIError,
    PermanentError,
    WindowClosedError,
    classify,
)

log = logging.getLogger(__name__)

PERMANENT_ERROR = "permanent_error"
"""Meta refused the message for good (invalid recipient, bad parameter, template problem...)."""
RETRIES_EXHAUSTED = "retries_exhausted"
"""Transient failures (5xx, timeouts) went on for ``SEND_MAX_ATTEMPTS`` attempts."""
THROTTLED = "throttled"
"""Meta kept rate-limiting the message for ``SEND_MAX_THROTTLED`` refusals."""
WINDOW_CLOSED = "window_closed"
"""Meta answered 131047: the customer's 24-hour window had closed."""
CONFIGURATION_ERROR = "configuration_error"
"""The token, permissions or account were wrong; replay once the operator has fixed them."""
DELIVERY_FAILED = "delivery_failed"
"""Meta accepted the message and later reported it ``failed`` with a non-permanent error."""
POISON = "poison"
"""Its send task killed its worker ``TASK_MAX_REDELIVERIES`` times."""
INTERNAL_ERROR = "internal_error"
"""An unexpected error in the gateway itself; the entry's error says what and where."""
MALFORMED = "malformed"
"""An inbound message or status Meta's format does not allow (no id, a timestamp that is no Unix
time, a value of the wrong type, no customer); replay it once the gateway can read it."""

REASONS = (
    PERMANENT_ERROR,
    RETRIES_EXHAUSTED,
    THROTTLED,
    WINDOW_CLOSED,
    CONFIGURATION_ERROR,
    DELIVERY_FAILED,
    POISON,
    INTERNAL_ERROR,
    MALFORMED,
)

OUTBOUND = "outbound"
"""A message the gateway sends."""
INBOUND = "inbound"
"""A unit of work that came in with a webhook."""
EVENT = "event"
"""An event for the business's systems that its subscriber did not take."""
DIRECTIONS = (OUTBOUND, INBOUND, EVENT)

EVENT_TASK = "events.deliver_event"
"""The task an event dead letter's replay runs, with ``{"subscription_id", "event"}``."""

INBOUND_KINDS = ("webhook", "message", "status", "turn", "answer", "reply")
"""What an inbound dead letter holds: a webhook that is no WhatsApp webhook, one of a webhook's
messages or statuses, or the argument of a conversation step (record, answer, record the reply)."""
KINDS = (*INBOUND_KINDS, "event")
"""Every ``kind`` an entry may have (an event dead letter's is ``event``)."""

SCAN_BATCH = 500
"""Entries read per round trip when listing or filtering."""

Enqueue = Callable[[str, str], None]
"""Puts a send task for (message_id, priority lane) on the broker."""

EnqueueTask = Callable[[str, Any], None]
"""Puts the task named by the first argument, with the second as its argument, on the broker."""


def inbound_id(kind: str, part: Any) -> str:
    """The id of the inbound dead letter for ``part``: the same part always gets the same id, so
    a redelivered webhook does not add a second entry."""
    canonical = json.dumps([kind, part], sort_keys=True, separators=(",", ":"), default=str)
    return "in-" + hashlib.sha256(canonical.encode()).hexdigest()[:24]


def reason_for(error: GraphAPIError | type[GraphAPIError]) -> str:
    """The dead-letter reason for a Graph error that is not worth retrying."""
    kind = error if isinstance(error, type) else type(error)
    if issubclass(kind, WindowClosedError):
        return WINDOW_CLOSED
    if issubclass(kind, ConfigurationError):
        return CONFIGURATION_ERROR
    if issubclass(kind, PermanentError):
        return PERMANENT_ERROR
    return DELIVERY_FAILED


def error_from_status(error: dict[str, Any]) -> dict[str, Any]:
    """Meta's error object of a ``failed`` status webhook, in the shape of ``GraphAPIError.to_dict``."""
    data = error.get("error_data") if isinstance(error.get("error_data"), dict) else {}
    try:
        code: int | None = int(error.get("code"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        code = None
    return {
        "class": classify(code, None).__name__ if code is not None else None,
        "code": code,
        "title": error.get("title"),
        "message": error.get("message"),
        "details": data.get("details"),
        "href": error.get("href"),
    }


@dataclass
class DeadLetter:
    """One message the gateway gave up on."""

    id: str
    reason: str
    message: dict[str, Any]
    priority: str | None
    error: dict[str, Any] | None
    attempts: int
    first_failed_at: float
    last_failed_at: float
    idempotency_key: str | None = None
    wamid: str | None = None
    created_at: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    phone_number_id: str | None = None
    """The number it was sent from (None: the configured one), so a replay uses it again."""
    direction: str = OUTBOUND
    kind: str | None = None
    """Of an inbound entry: ``message``, ``status``, ``webhook``, ``turn``, ``answer`` or ``reply``."""
    task: str | None = None
    """Of an inbound entry: the task a replay runs again, with ``payload`` as its argument."""
    payload: Any = None
    source: str | None = None
    """Of an inbound entry: the id of the task it was dead-lettered from; of an event entry, the
    subscription it was for."""

    @property
    def code(self) -> int | None:
        """Meta's error code, if the failure came from Meta."""
        return (self.error or {}).get("code")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        """The fields a listing shows; ``to_dict`` has the full message and history."""
        return {
            "id": self.id,
            "direction": self.direction,
            "kind": self.kind,
            "reason": self.reason,
            "code": self.code,
            "title": (self.error or {}).get("title") or (self.error or {}).get("message"),
            "to": self.message.get("to"),
            "recipient": self.message.get("recipient"),
            "priority": self.priority,
            "attempts": self.attempts,
            "first_failed_at": self.first_failed_at,
            "last_failed_at": self.last_failed_at,
        }


class DeadLetterStore:
    """Dead letters in Redis: ``add``, ``get``, ``list``, ``replay``, ``remove``, ``purge``."""

    def __init__(self, redis_client: redis.Redis):
        self.redis = redis_client

    @staticmethod
    def key(message_id: str) -> str:
        return keys.DEAD_LETTER.format(message_id=message_id)

    def __len__(self) -> int:
        return self.redis.zcard(keys.DEAD_LETTERS)

    def __contains__(self, message_id: object) -> bool:
        return self.redis.zscore(keys.DEAD_LETTERS, str(message_id)) is not None

    def add(
        self,
        store: MessageStore,
        message_id: str,
        reason: str,
        error: dict[str, Any] | None = None,
    ) -> DeadLetter | None:
        """Dead-letter message ``message_id``: keep the entry, then mark the record.

        The entry is written first: a crash between the two leaves a replayable dead letter, never
        a record that says ``dead_lettered`` with nothing to replay. None if there is no record.
        """
        if reason not in REASONS:
            raise ValueError(f"unknown dead-letter reason {reason!r}")
        record = store.get(message_id)
        if record is None:
            log.warning("message %s has no record; nothing to dead-letter", message_id)
            return None
        now = time.time()
        letter = self._letter(record, reason, error or record.error, now)
        pipe = self.redis.pipeline()
        pipe.set(self.key(message_id), json.dumps(letter.to_dict(), separators=(",", ":")))
        pipe.zadd(keys.DEAD_LETTERS, {message_id: now})
        pipe.execute()
        if error is not None:
            store.advance(message_id, FAILED, error=error, note={"code": error.get("code")})
        fields: dict[str, Any] = {"dead_letter_reason": reason}
        if error is not None:
            fields["error"] = error
        store.advance(message_id, DEAD_LETTERED, note={"reason": reason}, **fields)
        store.send_ended(message_id)
        log.warning(
            "message %s dead-lettered: %s (code %s)", message_id, reason, letter.code or "-"
        )
        self._announce(letter)
        return letter

    def add_inbound(
        self,
        kind: str,
        reason: str,
        part: Any,
        *,
        task: str,
        payload: Any,
        source: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> DeadLetter:
        """Dead-letter one unit of inbound work: ``part`` as it came, why, and how to run it
        again (``task`` with ``payload``). The same part dead-lettered again replaces its entry."""
        if reason not in REASONS or kind not in INBOUND_KINDS:
            raise ValueError(f"unknown dead-letter reason {reason!r} or kind {kind!r}")
        letter_id = inbound_id(kind, part)
        now = time.time()
        previous = self.get(letter_id)
        letter = DeadLetter(
            id=letter_id,
            reason=reason,
            message=part if isinstance(part, dict) else {"value": part},
            priority=None,
            error=error,
            attempts=(previous.attempts if previous else 0) + 1,
            first_failed_at=previous.first_failed_at if previous else now,
            last_failed_at=now,
            created_at=now,
            direction=INBOUND,
            kind=kind,
            task=task,
            payload=payload,
            source=source,
        )
        pipe = self.redis.pipeline()
        pipe.set(self.key(letter_id), json.dumps(letter.to_dict(), separators=(",", ":")))
        pipe.zadd(keys.DEAD_LETTERS, {letter_id: now})
        pipe.execute()
        # Ids and the reason only: the part is customer data.
        log.warning("inbound %s dead-lettered as %s: %s", kind, letter_id, reason)
        self._announce(letter)
        return letter

    def add_event(
        self,
        subscription_id: str,
        event: dict[str, Any],
        reason: str,
        error: dict[str, Any],
        attempts: int = 1,
    ) -> DeadLetter:
        """Dead-letter an event its subscriber did not take; replay delivers it again (same
        event id). No ``dead_letter.created`` event: a failing receiver would feed itself."""
        if reason not in REASONS:
            raise ValueError(f"unknown dead-letter reason {reason!r}")
        # One entry per (subscription, event): a replay that fails again replaces it.
        digest = hashlib.sha256(f"{subscription_id}:{event['id']}".encode()).hexdigest()
        letter_id = "ev-" + digest[:24]
        now = time.time()
        previous = self.get(letter_id)
        letter = DeadLetter(
            id=letter_id,
            reason=reason,
            message=event,
            priority=None,
            error=error,
            attempts=(previous.attempts if previous else 0) + attempts,
            first_failed_at=previous.first_failed_at if previous else now,
            last_failed_at=now,
            created_at=event.get("created_at") or now,
            direction=EVENT,
            kind="event",
            task=EVENT_TASK,
            payload={"subscription_id": subscription_id, "event": event},
            source=subscription_id,
        )
        self._write(letter)
        log.warning("event %s for %s dead-lettered: %s", event["id"], subscription_id, reason)
        return letter

    def _write(self, letter: DeadLetter) -> None:
        pipe = self.redis.pipeline()
        pipe.set(self.key(letter.id), json.dumps(letter.to_dict(), separators=(",", ":")))
        pipe.zadd(keys.DEAD_LETTERS, {letter.id: letter.last_failed_at})
        pipe.execute()

    def _announce(self, letter: DeadLetter) -> None:
        emit(
            self.redis,
            DEAD_LETTER_CREATED,
            letter.summary(),
            key=f"{letter.id}:{letter.last_failed_at}",
        )

    @staticmethod
    def _letter(
        record: MessageRecord, reason: str, error: dict[str, Any] | None, now: float
    ) -> DeadLetter:
        return DeadLetter(
            id=record.id,
            reason=reason,
            message=record.payload,
            priority=record.priority,
            error=error,
            attempts=record.attempts,
            first_failed_at=record.first_failed_at or now,
            last_failed_at=now,
            idempotency_key=record.idempotency_key,
            wamid=record.wamid,
            created_at=record.created_at,
            history=record.history,
            phone_number_id=record.phone_number_id,
        )

    def get(self, message_id: str) -> DeadLetter | None:
        raw = self.redis.get(self.key(message_id))
        return DeadLetter(**json.loads(raw)) if raw else None

    def ids(self, start: int = 0, end: int = -1) -> list[str]:
        """Message ids, most recent failure first."""
        return self.redis.zrevrange(keys.DEAD_LETTERS, start, end)

    def iter(
        self, reason: str | None = None, code: int | None = None, direction: str | None = None
    ) -> Iterator[DeadLetter]:
        """Every dead letter matching ``reason``, Meta error ``code`` and ``direction``, most
        recent first."""
        offset = 0
        while True:
            batch = self.ids(offset, offset + SCAN_BATCH - 1)
            if not batch:
                return
            offset += len(batch)
            for raw in self.redis.mget([self.key(i) for i in batch]):
                if raw is None:
                    continue
                letter = DeadLetter(**json.loads(raw))
                if reason and letter.reason != reason:
                    continue
                if code is not None and letter.code != code:
                    continue
                if direction and letter.direction != direction:
                    continue
                yield letter

    def list(
        self,
        reason: str | None = None,
        code: int | None = None,
        limit: int = 100,
        offset: int = 0,
        direction: str | None = None,
    ) -> list[DeadLetter]:
        """A page of matching dead letters, most recent failure first."""
        letters = []
        for index, letter in enumerate(self.iter(reason, code, direction)):
            if index < offset:
                continue
            if len(letters) >= limit:
                break
            letters.append(letter)
        return letters

    def remove(self, message_id: str) -> bool:
        """Drop one entry (the message record keeps its ``dead_lettered`` status and history)."""
        pipe = self.redis.pipeline()
        pipe.zrem(keys.DEAD_LETTERS, message_id)
        pipe.delete(self.key(message_id))
        removed, _ = pipe.execute()
        return bool(removed)

    def purge(
        self, reason: str | None = None, code: int | None = None, direction: str | None = None
    ) -> int:
        """Drop every matching entry; returns how many."""
        return sum(self.remove(letter.id) for letter in list(self.iter(reason, code, direction)))

    def replay(
        self,
        store: MessageStore,
        message_id: str,
        enqueue: Enqueue,
        enqueue_task: EnqueueTask | None = None,
    ) -> bool:
        """Send a dead-lettered message again: same id, same idempotency key, attempts reset;
        or run an inbound unit again: its task, with its payload (``enqueue_task``).

        The record is recreated from the entry if it has expired meanwhile. If the broker refuses
        the task, the entry and the record's status are put back and the error propagates.
        Returns False if there is no such dead letter.
        """
        letter = self.get(message_id)
        if letter is None:
            return False
        if letter.direction != OUTBOUND:
            return self._replay_inbound(letter, enqueue_task)
        if store.get(message_id) is None:
            store.create(
                message_id,
                letter.message,
                letter.priority,
                idempotency_key=letter.idempotency_key,
                created_at=letter.created_at,
                phone_number_id=letter.phone_number_id,
            )
        store.reset_for_replay(message_id)
        self.remove(message_id)
        try:
            enqueue(message_id, letter.priority)
        except Exception:
            self.redis.set(self.key(message_id), json.dumps(letter.to_dict()))
            self.redis.zadd(keys.DEAD_LETTERS, {message_id: letter.last_failed_at})
            store.advance(message_id, DEAD_LETTERED, note={"reason": "replay_failed"})
            raise
        log.info("dead letter %s replayed on the %s lane", message_id, letter.priority)
        return True

    def _replay_inbound(self, letter: DeadLetter, enqueue_task: EnqueueTask | None) -> bool:
        if enqueue_task is None or letter.task is None:
            raise ValueError(f"dead letter {letter.id} is {letter.direction}: replaying it runs a task")
        if letter.kind == "message" and isinstance(letter.message.get("id"), str):
            # Its claim says "done" (dead-lettered counts as handled): the replay must not skip it.
            self.redis.delete(keys.INBOUND_MESSAGE.format(wamid=letter.message["id"]))
        self.remove(letter.id)
        try:
            enqueue_task(letter.task, letter.payload)
        except Exception:
            self.redis.set(self.key(letter.id), json.dumps(letter.to_dict()))
            self.redis.zadd(keys.DEAD_LETTERS, {letter.id: letter.last_failed_at})
            raise
        log.info("%s dead letter %s replayed with %s", letter.direction, letter.id, letter.task)
        return True

    def replay_matching(
        self,
        store: MessageStore,
        enqueue: Enqueue,
        reason: str | None = None,
        code: int | None = None,
        limit: int | None = None,
        direction: str | None = None,
        enqueue_task: EnqueueTask | None = None,
    ) -> list[str]:
        """Replay every dead letter matching the filter (at most ``limit``); the ids replayed."""
        replayed = []
        for letter in list(self.iter(reason, code, direction)):
            if limit is not None and len(replayed) >= limit:
                break
            if self.replay(store, letter.id, enqueue, enqueue_task):
                replayed.append(letter.id)
        return replayed


def dead_letter_failed_status(
    store: MessageStore,
    dead_letters: DeadLetterStore,
    message_id: str,
    errors: list[dict[str, Any]],
) -> bool:
    """Apply a ``failed`` status webhook: record Meta's error and dead-letter the message.

    The reason follows Meta's error code (131047 is ``window_closed``, a permanent code is
    ``permanent_error``, anything else ``delivery_failed``). A repeat of the webhook changes
    nothing. Returns whether the message was dead-lettered now.
    """
    record = store.get(message_id)
    if record is None or record.status == DEAD_LETTERED:
        return False
    error = error_from_status(errors[0]) if errors else {"code": None, "message": "failed"}
    if record.payload is None:
        # Delivered before, its body dropped since (MESSAGE_KEEP_BODY): nothing to replay, so
        # Meta's error is kept on the record without a dead letter.
        store.advance(message_id, FAILED, error=error)
        log.warning("message %s failed after delivery; kept without a dead letter", message_id)
        return False
    reason = (
        reason_for(classify(error["code"], None)) if error["code"] is not None else DELIVERY_FAILED
    )
    return dead_letters.add(store, message_id, reason, error) is not None
