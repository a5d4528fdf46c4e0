"""The contact book: one customer, whichever of their ids Meta uses.

Meta names a customer by phone number (``wa_id``), by business-scoped user id (BSUID, such as
``US.13491208655302741918``), by parent BSUID (``US.ENT.11815799212886844830``), and shows their
username; a customer with a username may come with no phone number at all. The book keeps, per
sending number, each of these ids pointing to ONE customer key, under which the conversation,
profile, 24-hour window, handoff and pair rate limit are stored.

- A customer the book has never seen is keyed by their BSUID when Meta gives one, else by phone,
  except a phone that has data stored from before the book existed (an upgrade): it keeps its
  phone key, so that history stays reachable with no migration step.
- A key never changes: ids seen beside a known one are pointed at its key. A customer first seen
  by phone who later writes with a BSUID keeps the one conversation.
- An identity change (a new number, a new BSUID) points the new ids at the previous ids' key.
- An id the book does not know stands for itself (:meth:`CustomerBook.key_for`), so a phone with
  data from before the book still finds it.
- A username is kept and indexed but never decides who a customer is: Meta lets it change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import redis

from app import keys
from app.whatsapp.ids import is_user_id, is_wa_id
from app.whatsapp.phone import is_parent_user_id
from app.whatsapp.webhook import Contact, WebhookEvent

log = logging.getLogger(__name__)

PHONE = "phone"
USER = "user"
PARENT = "parent"
USERNAME = "username"

# KEYS: first the id keys that may name the customer, strongest first (ARGV[3] of them), then
# the id keys only written (ARGV[4] in all, those first ones included), then the data keys of a
# phone from before the book. ARGV: [1] TTL, [2] the key of a new customer, [3] ids read,
# [4] ids written, [5] that phone, or '' if none, [6] the prefix of the customer's record key
# (the record's own key follows from the customer key this finds), [7...] the record's fields
# and values. Returns the customer key; every id given then points to it, and its record holds
# the fields given.
_LEARN = """
local read, written = tonumber(ARGV[3]), tonumber(ARGV[4])
local key = false
for i = 1, read do
  key = redis.call('GET', KEYS[i])
  if key then break end
end
if not key then
  key = ARGV[2]
  if ARGV[5] ~= '' and #KEYS > written
     and redis.call('EXISTS', unpack(KEYS, written + 1)) > 0 then
    key = ARGV[5]
  end
end
for i = 1, written do redis.call('SET', KEYS[i], key, 'EX', ARGV[1]) end
local record = ARGV[6] .. key
redis.call('HSET', record, unpack(ARGV, 7))
redis.call('EXPIRE', record, ARGV[1])
return key
"""


@dataclass(frozen=True)
class Identity:
    """The ids of one customer that one webhook (or request) gives; any of them may be None."""

    wa_id: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None
    username: str | None = None

    def ids(self) -> list[tuple[str, str]]:
        """(kind, value) of the ids that may name the customer, strongest first."""
        pairs = [(USER, self.user_id), (PARENT, self.parent_user_id), (PHONE, self.wa_id)]
        return [(kind, value) for kind, value in pairs if value]

    @property
    def fresh_key(self) -> str | None:
        """The key a customer the book has never seen gets: the BSUID, else the phone."""
        return self.user_id or self.wa_id or self.parent_user_id

    @classmethod
    def of_contact(cls, contact: Contact) -> Identity:
        return cls(contact.wa_id, contact.user_id, contact.parent_user_id, contact.username)


@dataclass(frozen=True)
class Customer:
    """A customer as the book last saw them."""

    key: str
    wa_id: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None
    username: str | None = None
    seen_at: float | None = None

    def to_dict(self) -> dict[str, str | float | None]:
        return {
            "key": self.key,
            "wa_id": self.wa_id,
            "user_id": self.user_id,
            "parent_user_id": self.parent_user_id,
            "username": self.username,
        }


def kind_of(customer_id: str) -> str | None:
    """``phone``, ``user`` or ``parent`` for an id written as Meta writes it; None otherwise."""
    if is_wa_id(customer_id):
        return PHONE
    if is_user_id(customer_id):
        return PARENT if is_parent_user_id(customer_id) else USER
    return None


class CustomerBook:
    """Which ids belong to which customer, per sending number (see the module docstring)."""

    def __init__(self, redis_client: redis.Redis):
        self.redis = redis_client
        self._learn = redis_client.register_script(_LEARN)

    @staticmethod
    def id_key(phone_number_id: str, kind: str, value: str) -> str:
        return keys.CUSTOMER_ID.format(phone_number_id=phone_number_id, kind=kind, value=value)

    @staticmethod
    def record_key(phone_number_id: str, customer: str) -> str:
        return keys.CUSTOMER.format(phone_number_id=phone_number_id, customer=customer)

    def key_for(self, phone_number_id: str, customer_id: str) -> str:
        """The customer key of a phone number or (parent) BSUID; the id itself if unknown."""
        return self.keys_for([(phone_number_id, customer_id)])[0]

    def keys_for(self, ids: Sequence[tuple[str, str]]) -> list[str]:
        """:meth:`key_for` of each (sending number, customer id), in one round trip."""
        known = [
            (i, self.id_key(number, kind, customer_id))
            for i, (number, customer_id) in enumerate(ids)
            if (kind := kind_of(customer_id)) is not None
        ]
        found = self.redis.mget([key for _, key in known]) if known else []
        out = [customer_id for _, customer_id in ids]
        for (i, _), key in zip(known, found, strict=True):
            out[i] = key or out[i]
        return out

    def get(self, phone_number_id: str, customer: str) -> Customer | None:
        """What the book knows about the customer keyed ``customer``, or None."""
        data = self.redis.hgetall(self.record_key(phone_number_id, customer))
        if not data:
            return None
        seen = data.get("seen_at")
        return Customer(
            key=customer,
            wa_id=data.get("wa_id") or None,
            user_id=data.get("user_id") or None,
            parent_user_id=data.get("parent_user_id") or None,
            username=data.get("username") or None,
            seen_at=float(seen) if seen else None,
        )

    def learn(
        self, phone_number_id: str, identity: Identity, previous: Identity | None = None
    ) -> str | None:
        """Note that ``identity``'s ids (and ``previous``'s, for an identity change) are one
        customer; their customer key, or None when ``identity`` names no one."""
        before = previous or Identity()
        fresh = identity.fresh_key or before.fresh_key
        if fresh is None:
            return None
        # The previous ids first: an identity change keeps the history they name.
        named = list(dict.fromkeys(before.ids() + identity.ids()))
        written = named + [(USERNAME, identity.username)] * bool(identity.username)
        legacy_phone = before.wa_id or identity.wa_id
        legacy = self._legacy_keys(phone_number_id, legacy_phone) if legacy_phone else []
        fields = {
            "wa_id": identity.wa_id,
            "user_id": identity.user_id,
            "parent_user_id": identity.parent_user_id,
            "username": identity.username,
        }
        record = [item for pair in fields.items() if pair[1] for item in pair]
        # The record is written by the same step: one round trip for a sighting, not two.
        return self._learn(
            keys=[self.id_key(phone_number_id, k, v) for k, v in written] + legacy,
            args=[
                keys.CUSTOMER_TTL,
                fresh,
                len(named),
                len(written),
                legacy_phone or "",
                self.record_key(phone_number_id, ""),
                *record,
                "seen_at",
                time.time(),
            ],
        )

    def learn_event(
        self, event: WebhookEvent, learnt: dict[tuple[str, Identity], str | None] | None = None
    ) -> dict[str, str]:
        """Learn every id one webhook delivery carries (identity changes first, then the senders
        of messages, then the recipients of statuses); the customer key of each message, by id.

        An identity is learnt once per delivery, or once per ``learnt`` when deliveries applied
        together share it (the status lane's batch: a message's sent, delivered and read name
        the same customer); an identity change empties it, since it changes what ids mean."""
        learnt = {} if learnt is None else learnt
        for change in event.identity_changes:
            learnt.clear()
            self.learn(
                change.phone_number_id,
                Identity(change.wa_id, change.user_id, change.parent_user_id),
                previous=Identity(
                    change.previous_wa_id, change.previous_user_id, change.previous_parent_user_id
                ),
            )

        def once(phone_number_id: str, identity: Identity) -> str | None:
            if (phone_number_id, identity) not in learnt:
                learnt[phone_number_id, identity] = self.learn(phone_number_id, identity)
            return learnt[phone_number_id, identity]

        senders = {}
        for message in event.messages:
            contact = message.contact
            identity = Identity(
                message.from_ or (contact.wa_id if contact else None),
                message.from_user_id,
                message.from_parent_user_id,
                contact.username if contact else None,
            )
            key = once(message.metadata.phone_number_id, identity)
            if key is not None:
                senders[message.id] = key
        for status in event.statuses:
            contact = _recipient(status.contacts, status.recipient_id, status.recipient_user_id)
            identity = Identity(
                status.recipient_id or (contact.wa_id if contact else None),
                status.recipient_user_id or (contact.user_id if contact else None),
                status.recipient_parent_user_id or (contact.parent_user_id if contact else None),
                contact.username if contact else None,
            )
            once(status.metadata.phone_number_id, identity)
        return senders

    def _legacy_keys(self, phone_number_id: str, wa_id: str) -> list[str]:
        """The keys a phone's data lived under before the book: any of them present means the
        customer has a history under their phone."""
        ids = {"phone_number_id": phone_number_id, "wa_id": wa_id}
        return [
            template.format(**ids)
            for template in (keys.PROFILE, keys.CONVERSATION, keys.HANDOFF, keys.CUSTOMER_WINDOW)
        ]


def _recipient(
    contacts: Iterable[Contact], wa_id: str | None, user_id: str | None
) -> Contact | None:
    """The contact a status concerns: by BSUID, else by phone."""
    for contact in contacts:
        if (user_id and contact.user_id == user_id) or (wa_id and contact.wa_id == wa_id):
            return contact
    return None
