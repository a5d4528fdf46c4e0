"""What Meta charges for, from the ``pricing`` object of its status webhooks.

Each message is counted once (Meta prices it in its ``sent`` and its ``delivered`` status, and
repeats webhooks), on the UTC day of its status, per sending number, category (``marketing``,
``utility``, ``authentication``, ``service``...), whether billable, and pricing model.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from app import keys
from app.whatsapp.webhook import Status

MAX_DAYS = 92
"""Longest range one query may cover (a quarter)."""


@dataclass(frozen=True)
class PricedMessage:
    """One message as Meta priced it."""

    day: str
    phone_number_id: str
    category: str
    billable: bool
    pricing_model: str

    @property
    def field(self) -> str:
        return "|".join(
            (self.phone_number_id, self.category, str(self.billable).lower(), self.pricing_model)
        )


def day_of(timestamp: float) -> str:
    """The UTC day (``YYYY-MM-DD``) of a Unix time."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).date().isoformat()


def priced(status: Status) -> PricedMessage | None:
    """The pricing a status carries; None if it carries none."""
    pricing = status.pricing
    if pricing is None or not pricing.category:
        return None
    return PricedMessage(
        day=day_of(status.timestamp),
        phone_number_id=status.metadata.phone_number_id,
        category=str(pricing.category).lower(),
        billable=bool(pricing.billable),
        pricing_model=str(pricing.pricing_model or "unknown"),
    )


# KEYS[1] the message's "counted" marker, KEYS[2] the day's counts. ARGV: [1] the day, [2] the
# marker's TTL, [3] the count's field, [4] the counts' TTL. Counts the message unless its marker
# says it was: one round trip, and no marker without its count.
_COUNT_ONCE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
"""


def count_pricing(
    redis_client: redis.Redis,
    status: Status,
    observe: Callable[[PricedMessage], None] | None = None,
) -> PricedMessage | None:
    """Count the status's pricing if its message was not counted yet; returns what was counted.
    ``observe`` is told of each message counted (the Prometheus counter)."""
    message = priced(status)
    if message is None:
        return None
    counted = redis_client.register_script(_COUNT_ONCE)(
        keys=[keys.PRICING_SEEN.format(wamid=status.id), keys.PRICING_DAY.format(day=message.day)],
        args=[message.day, keys.PRICING_SEEN_TTL, message.field, keys.PRICING_TTL],
    )
    if not counted:
        return None
    if observe is not None:
        observe(message)
    return message


def report(
    redis_client: redis.Redis,
    first: dt.date,
    last: dt.date,
    phone_number_id: str | None = None,
) -> list[dict[str, Any]]:
    """Counts per day, sending number, category, billable and pricing model, oldest first."""
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    pipe = redis_client.pipeline(transaction=False)
    for day in days:
        pipe.hgetall(keys.PRICING_DAY.format(day=day.isoformat()))
    rows = []
    for day, counts in zip(days, pipe.execute(), strict=True):
        for field, count in sorted(counts.items()):
            number, category, billable, model = field.split("|")
            if phone_number_id and number != phone_number_id:
                continue
            rows.append(
                {
                    "day": day.isoformat(),
                    "phone_number_id": number,
                    "category": category,
                    "billable": billable == "true",
                    "pricing_model": model,
                    "messages": int(count),
                }
            )
    return rows
