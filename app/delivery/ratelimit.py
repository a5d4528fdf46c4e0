"""Rate limits shared by every send worker on every host: one atomic script in Redis.

Two token buckets guard each send: the sending number's (Meta's throughput tier: 80 messages a
second by default, up to 1,000) and the (number, recipient) pair's (Meta's pair limit, about one
message every 6 seconds to the same person, with a small burst). A send takes a token from both or
from neither, in one Lua script run on Redis's clock, so workers on hosts with skewed clocks still
share one limit.

The buckets are GCRA (the generic cell rate algorithm): a bucket is one number, the theoretical
arrival time of the next message, so it costs one small hash per number or pair. Lanes share the
tokens but not the burst: ``bulk`` may only use half of the burst and ``normal`` three quarters,
so even while a campaign keeps the bucket drained a reply on the ``high`` lane finds a token at
once. Nothing can exceed the bucket: in any window of ``w`` seconds a number sends at most
``burst + rate * w`` messages, whichever lanes they come from.

A refused caller is told when to come back. Callers are spread out rather than all told "in 12
ms": each lane keeps a wake-up pointer that advances by one interval per refusal, so a backlog
comes back one message per interval instead of as a herd. The deferral is only advice; the token
is taken when the caller comes back and asks again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import redis

from app import keys
from app.config import MAX_SENDER_RATE, Settings, get_settings

DEFAULT_SENDER_RATE = get_settings().send_rate_limit
"""Messages per second per sending number (``SEND_RATE_LIMIT``), unless ``SEND_RATE_LIMITS`` names
the number."""

BURST_SECONDS = get_settings().send_rate_burst_seconds
"""A number's burst, in seconds of its rate (at least one message): 8 messages at 80/s."""

PAIR_INTERVAL = get_settings().send_pair_interval
"""Seconds between messages to the same recipient in the long run (Meta's pair rate limit)."""

PAIR_BURST = get_settings().send_pair_burst
"""Messages that may go to one recipient back to back before the pair interval applies."""

LANE_SHARE = {"high": 1.0, "normal": 0.75, "bulk": 0.5}
"""Share of a bucket's burst each priority lane may use; the rest is headroom for the lanes above."""

IDLE_EXPIRY = 60.0
"""Seconds a bucket outlives its last use; after that it is full again anyway and can go."""

# KEYS: buckets (sender, then pair). ARGV: lane, then per bucket: interval (s), capacity (tokens).
# Returns {granted (1/0), wait (seconds, as a string)}. Granted only if every bucket allows it, and
# only then are tokens taken. A refusal advances the lane's wake-up pointer of each bucket that
# refused, and the wait is when the caller's turn comes, not merely when the next token appears.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local lane = ARGV[1]
local n = #KEYS
local tats, waits = {}, {}
local refused = false
for i = 1, n do
  local interval = tonumber(ARGV[2 * i])
  local capacity = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('HGET', KEYS[i], 'tat') or '0')
  if tat < now then tat = now end
  tats[i] = tat
  waits[i] = (tat - now) - (capacity - 1) * interval
  if waits[i] > 0 then refused = true end
end
if not refused then
  for i = 1, n do
    local interval = tonumber(ARGV[2 * i])
    local tat = tats[i] + interval
    redis.call('HSET', KEYS[i], 'tat', string.format('%.6f', tat))
    redis.call('PEXPIRE', KEYS[i], math.ceil((tat - now + tonumber(ARGV[2 * n + 2])) * 1000))
  end
  return {1, '0'}
end
local wake = now
for i = 1, n do
  if waits[i] > 0 then
    local interval = tonumber(ARGV[2 * i])
    local field = 'wake:' .. lane
    local pointer = tonumber(redis.call('HGET', KEYS[i], field) or '0')
    local turn = math.max(pointer, now + waits[i])
    redis.call('HSET', KEYS[i], field, string.format('%.6f', turn + interval))
    local horizon = math.max(tats[i], turn + interval) - now
    redis.call('PEXPIRE', KEYS[i], math.ceil((horizon + tonumber(ARGV[2 * n + 2])) * 1000))
    if turn > wake then wake = turn end
  end
end
return {0, string.format('%.6f', wake - now)}
"""


@dataclass(frozen=True)
class Bucket:
    """One token bucket's shape: ``rate`` tokens a second, at most ``burst`` at once."""

    rate: float
    burst: int

    @property
    def interval(self) -> float:
        return 1.0 / self.rate

    def capacity(self, lane: str) -> int:
        """Tokens ``lane`` may use: its share of the burst, at least one."""
        return max(1, math.ceil(self.burst * LANE_SHARE.get(lane, LANE_SHARE["bulk"])))


@dataclass
class SendRateLimiter:
    """The sending number's and the recipient's buckets, checked and taken together.

    ``acquire`` returns 0.0 when the message may go now (both tokens taken), else the seconds to
    wait before asking again (nothing taken).
    """

    redis: redis.Redis
    default_rate: float = DEFAULT_SENDER_RATE
    rates: Mapping[str, float] = field(default_factory=dict)
    burst_seconds: float = BURST_SECONDS
    pair_interval: float = PAIR_INTERVAL
    pair_burst: int = PAIR_BURST

    def __post_init__(self) -> None:
        for rate in (self.default_rate, *self.rates.values()):
            if not 0 < rate <= MAX_SENDER_RATE:
                raise ValueError(f"a send rate must be in (0, {MAX_SENDER_RATE:g}] messages/s")
        self._acquire = self.redis.register_script(_ACQUIRE)

    @classmethod
    def from_settings(cls, redis_client: redis.Redis, settings: Settings | None = None):
        """A limiter configured by ``SEND_RATE_LIMIT``, ``SEND_RATE_LIMITS`` and the bursts."""
        settings = settings or get_settings()
        return cls(
            redis_client,
            default_rate=settings.send_rate_limit,
            rates=settings.send_rate_limits,
            burst_seconds=settings.send_rate_burst_seconds,
            pair_interval=settings.send_pair_interval,
            pair_burst=settings.send_pair_burst,
        )

    def sender_bucket(self, phone_number_id: str) -> Bucket:
        """The bucket of a sending number."""
        rate = self.rates.get(phone_number_id, self.default_rate)
        return Bucket(rate, max(1, round(rate * self.burst_seconds)))

    def pair_bucket(self) -> Bucket:
        """The bucket of every (number, recipient) pair."""
        return Bucket(1.0 / self.pair_interval, max(1, self.pair_burst))

    def acquire(self, phone_number_id: str, recipient: str | None, lane: str = "normal") -> float:
        """Take a token for one message, or say how many seconds to wait before asking again."""
        sender = self.sender_bucket(phone_number_id)
        bucket_keys = [keys.RATE_SENDER.format(phone_number_id=phone_number_id)]
        args: list[str | float | int] = [lane, repr(sender.interval), sender.capacity(lane)]
        if recipient and self.pair_interval > 0:
            pair = self.pair_bucket()  # the same for every lane: it protects the customer
            bucket_keys.append(
                keys.RATE_PAIR.format(phone_number_id=phone_number_id, wa_id=recipient)
            )
            args += [repr(pair.interval), pair.burst]
        args.append(IDLE_EXPIRY)
        granted, wait = self._acquire(keys=bucket_keys, args=args)
        return 0.0 if int(granted) else max(float(wait), 0.001)
