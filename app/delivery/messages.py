"""Outbound message records in Redis: payload, status, Meta's ``wamid``, attempts and history.

A record is created before its send task is enqueued, so the task carries only the message id and
the store is the one place that knows what was asked, what happened and when.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from app import keys
from app.config import get_settings

QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
DELIVERED = "delivered"
READ = "read"
FAILED = "failed"
DEAD_LETTERED = "dead_lettered"

STATUS_RANK = {QUEUED: 0, SENDING: 0, SENT: 2, DELIVERED: 3, READ: 4, FAILED: 5, DEAD_LETTERED: 6}
"""A status only ever moves to one of equal or higher rank: a late ``delivered`` never undoes ``read``."""

TERMINAL = frozenset({DEAD_LETTERED})
"""Statuses after which no task sends the message again (until an operator replays it)."""

FINAL = frozenset({DELIVERED, READ})
"""Statuses of a message that reached the customer's phone: nothing will send it again, so its
record is compacted for the rest of its retention (body dropped, history folded into one field)."""

HISTORY_CODES = {
    QUEUED: "Q",
    SENDING: "P",
    SENT: "S",
    DELIVERED: "D",
    READ: "R",
    FAILED: "F",
    DEAD_LETTERED: "X",
}
"""One letter per status in a compacted history, which stays short enough for Redis to keep the
record in its compact hash encoding (values of at most 64 bytes)."""
_STATUS_OF_CODE = {code: status for status, code in HISTORY_CODES.items()}

# KEYS[1] record hash, KEYS[2] history list. ARGV: status, rank table (JSON), now, extra fields
# (JSON), history note (JSON object merged into the history entry), final statuses (JSON object
# of status to 1), history codes (JSON), keep the body ("1") or not ("0").
# Returns 1 when the status moved, 0 when it was the same (fields still set; the entry is kept if
# it has a note) or older than the record's (an ignored entry goes into the history), -1 when
# there is no such message.
# Once the record's status is final, the history list is folded into the record's 'history' field
# ("<code><ms after created_at>", space-separated; "~" before an ignored one, "^" before one that
# arrived before the wamid; other notes are not kept),
# the list deleted, the body dropped unless kept, and default-valued fields removed.
_ADVANCE = """
local ranks = cjson.decode(ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local current = redis.call('HGET', KEYS[1], 'status')
local entry = cjson.decode(ARGV[5])
local noted = next(entry) ~= nil
entry['status'] = ARGV[1]
entry['at'] = tonumber(ARGV[3])
local function fold(status)
  if not cjson.decode(ARGV[6])[status] then return end
  local codes = cjson.decode(ARGV[7])
  local created = tonumber(redis.call('HGET', KEYS[1], 'created_at')) or 0
  local parts = {}
  local folded = redis.call('HGET', KEYS[1], 'history')
  if folded then parts[1] = folded end
  for _, raw in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    local e = cjson.decode(raw)
    local ms = math.max(0, math.floor((tonumber(e['at']) - created) * 1000 + 0.5))
    local flags = (e['ignored'] and '~' or '') .. (e['arrived_before_wamid'] and '^' or '')
    parts[#parts + 1] = flags .. (codes[e['status']] or '?') .. ms
  end
  redis.call('DEL', KEYS[2])
  local record = {}
  local flat = redis.call('HGETALL', KEYS[1])
  for i = 1, #flat, 2 do record[flat[i]] = flat[i + 1] end
  record['history'] = table.concat(parts, ' ')
  if ARGV[8] ~= '1' then record['payload'] = nil end
  if record['failures'] == '0' then record['failures'] = nil end
  if record['throttles'] == '0' then record['throttles'] = nil end
  if record['recipient'] == '' then record['recipient'] = nil end
  -- Written anew: a hash Redis has once converted from its compact encoding (the body is longer
  -- than 64 bytes) never converts back by itself.
  local ttl = redis.call('PTTL', KEYS[1])
  redis.call('DEL', KEYS[1])
  for k, v in pairs(record) do redis.call('HSET', KEYS[1], k, v) end
  if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
end
if current and ranks[current] and ranks[ARGV[1]] < ranks[current] then
  entry['ignored'] = true
  redis.call('RPUSH', KEYS[2], cjson.encode(entry))
  fold(current)
  return 0
end
local extra = cjson.decode(ARGV[4])
for k, v in pairs(extra) do redis.call('HSET', KEYS[1], k, v) end
if current == ARGV[1] then
  if noted then
    redis.call('RPUSH', KEYS[2], cjson.encode(entry))
    fold(current)
  end
  return 0
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updated_at', ARGV[3])
redis.call('RPUSH', KEYS[2], cjson.encode(entry))
fold(ARGV[1])
return 1
"""

# KEYS[1] send lock. ARGV[1] the holder's token. Deletes the lock only if this holder still has it.
# KEYS: SEND_PENDING, SEND_WAITING, the message's hash. ARGV: the message id.
# The message leaves the pending set; if it was there, its lane and number count one less.
_LEAVE = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
local f = redis.call('HMGET', KEYS[3], 'priority', 'phone_number_id')
local field = (f[1] or '') .. ':' .. (f[2] or '')
if redis.call('HINCRBY', KEYS[2], field, -1) <= 0 then redis.call('HDEL', KEYS[2], field) end
return 1
"""

# KEYS and ARGV as _LEAVE, then ARGV[2]: the score. The message joins the pending set; if it
# was not there, its lane and number count one more.
_ENTER = """
if redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1]) == 0 then return 0 end
local f = redis.call('HMGET', KEYS[3], 'priority', 'phone_number_id')
redis.call('HINCRBY', KEYS[2], (f[1] or '') .. ':' .. (f[2] or ''), 1)
return 1
"""

_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# KEYS[1] the wamid index, KEYS[2] the wamid's early statuses. ARGV: the status (JSON), TTL, kept,
# then the text before and after the message id in the key of its campaign entry (derived from
# the id found, so read here rather than in a round trip of its own). Returns the message id and
# its campaign entry (false when none) if the wamid is recorded; otherwise keeps the status for
# when it is.
_ID_OR_HOLD = """
local message_id = redis.call('GET', KEYS[1])
if message_id then
  return {message_id, redis.call('GET', ARGV[4] .. message_id .. ARGV[5])}
end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
redis.call('EXPIRE', KEYS[2], ARGV[2])
return false
"""

_CAMPAIGN_KEY_AROUND = keys.CAMPAIGN_OF_MESSAGE.split("{message_id}")
"""``keys.CAMPAIGN_OF_MESSAGE`` before and after the message id, for ``_ID_OR_HOLD``."""


@dataclass(frozen=True)
class NewMessage:
    """A message to record with :meth:`MessageStore.create_many`."""

    id: str
    payload: dict[str, Any]
    priority: str
    idempotency_key: str | None = None
    note: dict[str, Any] | None = None
    phone_number_id: str | None = None
    """The sending number; None for the configured ``WHATSAPP_PHONE_NUMBER_ID``."""
    customer: str | None = None
    """The customer's key (``CustomerBook.key_for``), when the caller has already looked it up."""


@dataclass
class MessageRecord:
    """An outbound message as the store knows it."""

    id: str
    to: str
    payload: dict[str, Any] | None
    """The message as sent to Meta; None once the message is final and its body was dropped
    (``MESSAGE_KEEP_BODY``)."""
    priority: str
    status: str
    wamid: str | None = None
    attempts: int = 0
    failures: int = 0
    throttles: int = 0
    error: dict[str, Any] | None = None
    dead_letter_reason: str | None = None
    idempotency_key: str | None = None
    first_failed_at: float | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    phone_number_id: str | None = None
    """The number it is sent from; None for the configured ``WHATSAPP_PHONE_NUMBER_ID``."""
    recipient: str | None = None
    """The customer's business-scoped user id, for a message addressed by ``recipient``."""
    customer: str | None = None
    """The customer's key (``CustomerBook.key_for``) as it was when the message was accepted,
    so that a send need not look it up again; None on records older than it (look it up)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape the API returns."""
        return {
            "id": self.id,
            "to": self.to,
            "recipient": self.recipient,
            "phone_number_id": self.phone_number_id,
            "priority": self.priority,
            "status": self.status,
            "wamid": self.wamid,
            "attempts": self.attempts,
            "error": self.error,
            "dead_letter_reason": self.dead_letter_reason,
            "message": self.payload,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "history": self.history,
        }


def unfold_history(folded: str | None, created_at: float) -> list[dict[str, Any]]:
    """The history entries of a compacted record's ``history`` field (see ``_ADVANCE``)."""
    entries: list[dict[str, Any]] = []
    for part in (folded or "").split():
        code = part.lstrip("~^")
        entry: dict[str, Any] = {
            "status": _STATUS_OF_CODE.get(code[0], "unknown"),
            "at": round(created_at + int(code[1:]) / 1000, 3),
        }
        if "~" in part[: len(part) - len(code)]:
            entry["ignored"] = True
        if "^" in part[: len(part) - len(code)]:
            entry["arrived_before_wamid"] = True
        entries.append(entry)
    return entries


def waiting_field(priority: str, phone_number_id: str | None) -> str:
    """The field of ``SEND_WAITING`` that counts lane ``priority`` of a number."""
    return f"{priority}:{phone_number_id or ''}"


_FINAL_JSON = json.dumps(dict.fromkeys(sorted(FINAL), 1))
_CODES_JSON = json.dumps(HISTORY_CODES)


class MessageStore:
    """Outbound message records, keyed by the gateway's message id.

    ``retention`` (seconds) and ``keep_body`` default to ``MESSAGE_RETENTION_DAYS`` and
    ``MESSAGE_KEEP_BODY``.
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        *,
        retention: int | None = None,
        keep_body: bool | None = None,
    ):
        settings = get_settings() if retention is None or keep_body is None else None
        self.retention = (
            settings.message_retention_days * keys.DAY if retention is None else retention
        )
        self.keep_body = settings.message_keep_body if keep_body is None else keep_body
        self.redis = redis_client
        self._advance = redis_client.register_script(_ADVANCE)
        self._unlock = redis_client.register_script(_UNLOCK)
        self._id_or_hold = redis_client.register_script(_ID_OR_HOLD)
        self._leave = redis_client.register_script(_LEAVE)
        self._enter = redis_client.register_script(_ENTER)

    @staticmethod
    def key(message_id: str) -> str:
        return keys.MESSAGE.format(message_id=message_id)

    @staticmethod
    def history_key(message_id: str) -> str:
        return keys.MESSAGE.format(message_id=message_id) + ":history"

    def create(
        self,
        message_id: str,
        payload: dict[str, Any],
        priority: str,
        *,
        idempotency_key: str | None = None,
        note: dict[str, Any] | None = None,
        created_at: float | None = None,
        phone_number_id: str | None = None,
        customer: str | None = None,
    ) -> bool:
        """Record a new queued message; False (and nothing changed) if the id already exists.

        ``note`` goes into the first history entry (say, that a template replaced the message);
        ``phone_number_id`` is the sending number (None: the configured one); ``customer`` the
        customer's key, if the caller knows it (see :attr:`MessageRecord.customer`).
        """
        if not self.redis.hsetnx(self.key(message_id), "id", message_id):
            return False
        pipe = self.redis.pipeline(transaction=False)
        self._write_new(
            pipe,
            message_id,
            payload,
            priority,
            idempotency_key,
            note,
            created_at,
            phone_number_id,
            customer,
        )
        pipe.execute()
        return True

    def create_many(self, messages: list[NewMessage]) -> None:
        """Record many new queued messages in one round trip; their ids must be fresh (uuid4)."""
        pipe = self.redis.pipeline(transaction=False)
        for m in messages:
            self._write_new(
                pipe,
                m.id,
                m.payload,
                m.priority,
                m.idempotency_key,
                m.note,
                None,
                m.phone_number_id,
                m.customer,
            )
        pipe.execute()

    def _write_new(
        self,
        pipe: Any,
        message_id: str,
        payload: dict[str, Any],
        priority: str,
        idempotency_key: str | None,
        note: dict[str, Any] | None,
        created_at: float | None,
        phone_number_id: str | None = None,
        customer: str | None = None,
    ) -> None:
        now = time.time()
        key = self.key(message_id)
        record = {
            "id": message_id,
            "to": str(payload.get("to", "")),
            "recipient": str(payload.get("recipient", "")),
            "payload": json.dumps(payload, separators=(",", ":")),
            "priority": priority,
            "status": QUEUED,
            "attempts": 0,
            "failures": 0,
            "throttles": 0,
            "created_at": created_at or now,
            "updated_at": now,
        }
        if idempotency_key:
            record["idempotency_key"] = idempotency_key
        if phone_number_id:
            record["phone_number_id"] = phone_number_id
        if customer:
            record["customer"] = customer
        pipe.hset(key, mapping=record)
        pipe.expire(key, self.retention)
        pipe.rpush(
            self.history_key(message_id), json.dumps({**(note or {}), "status": QUEUED, "at": now})
        )
        pipe.expire(self.history_key(message_id), self.retention)
        pipe.zadd(keys.SEND_PENDING, {message_id: now})
        pipe.hincrby(keys.SEND_WAITING, waiting_field(priority, phone_number_id), 1)

    def delete(self, *message_ids: str) -> None:
        """Forget messages that were never enqueued (their request failed before the broker took them)."""
        if message_ids:
            pipe = self.redis.pipeline(transaction=False)
            for message_id in message_ids:
                self._leave_pending(message_id, pipe)
            pipe.execute()
            self.redis.delete(*[k for i in message_ids for k in (self.key(i), self.history_key(i))])

    def _leave_pending(self, message_id: str, pipe: Any = None) -> None:
        """Take the message out of ``SEND_PENDING`` and its lane's depth (in ``pipe`` if given)."""
        keys_ = [keys.SEND_PENDING, keys.SEND_WAITING, self.key(message_id)]
        if pipe is not None:
            pipe.eval(_LEAVE, len(keys_), *keys_, message_id)
        else:
            self._leave(keys=keys_, args=[message_id])

    def waiting(self, priority: str, phone_number_id: str | None) -> int:
        """Messages of lane ``priority`` and number waiting to be sent (see ``SEND_WAITING``)."""
        value = self.redis.hget(keys.SEND_WAITING, waiting_field(priority, phone_number_id))
        return int(value or 0)

    def expect_run(self, message_id: str, at: float | None = None) -> None:
        """Note that a send task for the message is due to run at ``at`` (default now)."""
        self.expect_runs([message_id], at)

    def expect_runs(self, message_ids: Sequence[str], at: float | None = None) -> None:
        """Note that a send task for each of the messages is due to run at ``at`` (default now)."""
        if message_ids:
            due = at or time.time()
            # xx: only messages still pending; one whose send ended stays out (and uncounted).
            self.redis.zadd(keys.SEND_PENDING, dict.fromkeys(message_ids, due), xx=True)

    def send_ended(self, message_id: str) -> None:
        """The message is with Meta or dead-lettered: no send task is expected any more."""
        self._leave_pending(message_id)

    def overdue(self, before: float, limit: int = 1000) -> list[str]:
        """Messages whose send task was due to run before ``before``, most overdue first."""
        return self.redis.zrangebyscore(keys.SEND_PENDING, "-inf", before, start=0, num=limit)

    def get(self, message_id: str, history: bool = True) -> MessageRecord | None:
        """The record for ``message_id``, or None; without its history unless ``history``."""
        if history:
            pipe = self.redis.pipeline()
            pipe.hgetall(self.key(message_id))
            pipe.lrange(self.history_key(message_id), 0, -1)
            data, entries = pipe.execute()
        else:
            data, entries = self.redis.hgetall(self.key(message_id)), []
        return self.decode(data, entries)

    @staticmethod
    def decode(data: dict[str, Any], entries: Sequence[str] = ()) -> MessageRecord | None:
        """The record of a message's hash (``data``, read by the caller) and its history
        ``entries`` (none: without its history), or None when there is no such message."""
        if not data or "status" not in data:
            return None
        return MessageRecord(
            id=data["id"],
            to=data.get("to", ""),
            payload=json.loads(data["payload"]) if "payload" in data else None,
            priority=data.get("priority", "normal"),
            status=data.get("status", QUEUED),
            wamid=data.get("wamid") or None,
            attempts=int(data.get("attempts", 0)),
            failures=int(data.get("failures", 0)),
            throttles=int(data.get("throttles", 0)),
            error=json.loads(data["error"]) if data.get("error") else None,
            dead_letter_reason=data.get("dead_letter_reason") or None,
            idempotency_key=data.get("idempotency_key") or None,
            first_failed_at=float(data["first_failed_at"]) if data.get("first_failed_at") else None,
            created_at=float(data.get("created_at", 0)),
            updated_at=float(data.get("updated_at", 0)),
            history=unfold_history(data.get("history"), float(data.get("created_at", 0)))
            + [json.loads(h) for h in entries],
            phone_number_id=data.get("phone_number_id") or None,
            recipient=data.get("recipient") or None,
            customer=data.get("customer") or None,
        )

    def advance(
        self,
        message_id: str,
        status: str,
        *,
        note: dict[str, Any] | None = None,
        pipe: Any = None,
        **fields: Any,
    ) -> bool:
        """Move the message to ``status`` unless it is already further along; set ``fields`` too.

        ``note`` is merged into the history entry. Returns whether the status was applied. Field
        values are stored as strings; dicts as JSON. With ``pipe``, the step is only queued on
        that pipeline (and True returned): it runs with the pipeline's other commands.
        """
        if status not in STATUS_RANK:
            raise ValueError(f"unknown message status {status!r}")
        extra = {k: json.dumps(v) if isinstance(v, dict) else str(v) for k, v in fields.items()}
        keys_ = [self.key(message_id), self.history_key(message_id)]
        args = [
            status,
            json.dumps(STATUS_RANK),
            time.time(),
            json.dumps(extra),
            json.dumps(note or {}),
            _FINAL_JSON,
            _CODES_JSON,
            "1" if self.keep_body else "0",
        ]
        if pipe is not None:
            # EVAL, not the registered script: a script in a pipeline costs a SCRIPT EXISTS round
            # trip first. Redis caches the compiled script by its digest either way.
            pipe.eval(_ADVANCE, len(keys_), *keys_, *args)
            return True
        return self._advance(keys=keys_, args=args) == 1

    def mark_sending(self, message_id: str, attempt: int) -> None:
        """Mark the message ``sending`` in its ``attempt``-th attempt, in one round trip.

        Only the holder of the message's send lock calls this, so ``attempt`` (the record's
        attempts plus one) cannot be stale.
        """
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.key(message_id), "attempts", attempt)
        pipe.zadd(keys.SEND_PENDING, {message_id: time.time()}, xx=True)
        self.advance(message_id, SENDING, note={"attempt": attempt}, pipe=pipe)
        pipe.execute()

    def count_failure(self, message_id: str) -> int:
        """Count one transient failure (the budget ``SEND_MAX_ATTEMPTS`` bounds); the new count."""
        pipe = self.redis.pipeline()
        pipe.hincrby(self.key(message_id), "failures", 1)
        pipe.hsetnx(self.key(message_id), "first_failed_at", time.time())
        return pipe.execute()[0]

    def count_throttle(self, message_id: str) -> int:
        """Count one refusal by Meta's rate limits, kept apart from the failure budget; the count."""
        pipe = self.redis.pipeline()
        pipe.hincrby(self.key(message_id), "throttles", 1)
        pipe.hsetnx(self.key(message_id), "first_failed_at", time.time())
        return pipe.execute()[0]

    def lock_send(self, message_id: str, token: str, ttl: float) -> bool:
        """Take the message's send lock for ``ttl`` seconds; False if another run holds it."""
        key = keys.SEND_LOCK.format(message_id=message_id)
        return bool(self.redis.set(key, token, nx=True, px=max(1, int(ttl * 1000))))

    def lock_and_get(
        self, message_id: str, token: str, ttl: float
    ) -> tuple[bool, MessageRecord | None]:
        """:meth:`lock_send` and the record without its history, in one round trip: what every
        send attempt starts with. The record is read after the lock is taken."""
        pipe = self.redis.pipeline(transaction=False)
        lock = keys.SEND_LOCK.format(message_id=message_id)
        pipe.set(lock, token, nx=True, px=max(1, int(ttl * 1000)))
        pipe.hgetall(self.key(message_id))
        locked, data = pipe.execute()
        return bool(locked), self.decode(data)

    def lock_remaining(self, message_id: str) -> float:
        """Seconds until the send lock expires by itself (0 if it is free)."""
        return max(0, self.redis.pttl(keys.SEND_LOCK.format(message_id=message_id))) / 1000

    def unlock_send(self, message_id: str, token: str) -> None:
        """Release the send lock if ``token`` still holds it."""
        self._unlock(keys=[keys.SEND_LOCK.format(message_id=message_id)], args=[token])

    def reset_for_replay(self, message_id: str) -> None:
        """Put a dead-lettered message back to ``queued`` with its attempts and error cleared.

        The one way a status moves backwards, and only on an operator's request. The id, payload and
        idempotency key stay; Meta's id of the failed attempt is forgotten, so its late statuses no
        longer reach the message.
        """
        key = self.key(message_id)
        old_wamid = self.redis.hget(key, "wamid")
        now = time.time()
        pipe = self.redis.pipeline()
        pipe.hset(
            key,
            mapping={
                "status": QUEUED,
                "attempts": 0,
                "failures": 0,
                "throttles": 0,
                "updated_at": now,
            },
        )
        pipe.hdel(key, "error", "wamid", "dead_letter_reason", "first_failed_at")
        if old_wamid:
            pipe.delete(keys.WAMID_INDEX.format(wamid=old_wamid))
        pipe.expire(key, self.retention)
        pipe.rpush(
            self.history_key(message_id),
            json.dumps({"status": QUEUED, "at": now, "replayed": True}),
        )
        pipe.expire(self.history_key(message_id), self.retention)
        keys_ = [keys.SEND_PENDING, keys.SEND_WAITING, key]
        pipe.eval(_ENTER, len(keys_), *keys_, message_id, now)
        pipe.execute()

    def record_wamid(self, message_id: str, wamid: str) -> list[dict[str, Any]]:
        """Keep Meta's id for the message and index it, so status webhooks find the message;
        returns the statuses that arrived before (:meth:`early_statuses`), in the same round trip.

        None is missed: the index is one write, :meth:`id_for_wamid_or_hold` runs entirely before
        it (its status is then read here) or after it (it then finds the message itself).

        The message's send lock goes in the same round trip, whoever holds it: with the wamid
        recorded it has nothing left to guard, since any run that takes it next finds the wamid.
        """
        return self.record_wamid_along(message_id, wamid, lambda pipe: None)[0]

    def record_wamid_along(
        self, message_id: str, wamid: str, along: Callable[[Any], None]
    ) -> tuple[list[dict[str, Any]], list[Any]]:
        """:meth:`record_wamid`, with the commands ``along`` queues on its pipeline after its
        own (another store's reads and writes that go with a send, so that they cost no round
        trip of their own); the early statuses, and the results of those commands in order, an error
        in the place of a command that failed."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.key(message_id), "wamid", wamid)
        pipe.delete(keys.SEND_LOCK.format(message_id=message_id))
        pipe.set(keys.WAMID_INDEX.format(wamid=wamid), message_id, ex=self.retention)
        self._leave_pending(message_id, pipe)
        self.advance(message_id, SENT, pipe=pipe)
        pipe.lrange(keys.EARLY_STATUSES.format(wamid=wamid), 0, -1)
        own = len(pipe)
        along(pipe)
        # Errors of the commands along are theirs to handle (an error is in their place).
        results = pipe.execute(raise_on_error=False)
        for result in results[:own]:
            if isinstance(result, Exception):
                raise result
        return [json.loads(item) for item in results[own - 1]], results[own:]

    def shorten_wamid_index(self, wamid: str) -> None:
        """Keep the index of a message that was read only ``WAMID_INDEX_AFTER_READ_TTL`` more:
        no later status can change it."""
        self.redis.expire(keys.WAMID_INDEX.format(wamid=wamid), keys.WAMID_INDEX_AFTER_READ_TTL)

    def id_for_wamid(self, wamid: str) -> str | None:
        """The gateway message id that Meta's ``wamid`` belongs to, if we sent it."""
        return self.redis.get(keys.WAMID_INDEX.format(wamid=wamid))

    def id_for_wamid_or_hold(self, wamid: str, status: dict[str, Any]) -> str | None:
        """The gateway message id of Meta's ``wamid``; if it is not recorded yet, None, and
        ``status`` (JSON-safe) is kept for :meth:`early_statuses`. One atomic step: a status is
        either matched to its message or kept, never dropped in between."""
        return self.target_of_status(wamid, status)[0]

    def target_of_status(self, wamid: str, status: dict[str, Any]) -> tuple[str | None, str | None]:
        """:meth:`id_for_wamid_or_hold`, and the message's campaign entry
        (``keys.CAMPAIGN_OF_MESSAGE``, None when it is in no campaign), in the same step."""
        found = self._id_or_hold(
            keys=[keys.WAMID_INDEX.format(wamid=wamid), keys.EARLY_STATUSES.format(wamid=wamid)],
            args=[
                json.dumps(status),
                keys.EARLY_STATUSES_TTL,
                keys.EARLY_STATUSES_KEPT,
                *_CAMPAIGN_KEY_AROUND,
            ],
        )
        if not found:
            return None, None
        message_id, campaign = found
        return message_id, campaign or None

    def early_statuses(self, wamid: str) -> list[dict[str, Any]]:
        """The statuses of ``wamid`` that arrived before it was recorded, oldest first."""
        key = keys.EARLY_STATUSES.format(wamid=wamid)
        return [json.loads(item) for item in self.redis.lrange(key, 0, -1)]

    def forget_early_statuses(self, wamid: str) -> None:
        """Drop the statuses of ``wamid`` kept by :meth:`id_for_wamid_or_hold`, once applied."""
        self.redis.delete(keys.EARLY_STATUSES.format(wamid=wamid))
