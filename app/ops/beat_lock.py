"""Beat's lock: every host may run beat, and only the one holding the lock sends scheduled tasks.

The holder renews the lock well within :data:`app.keys.BEAT_LOCK_TTL`; a host that dies, freezes
or loses Redis stops renewing, and another beat takes the lock once it expires. A holder that
comes back finds another token in the lock and stands by: no two beats schedule at once.
"""

from __future__ import annotations

import uuid

import redis

from app import keys

HOLD = """
-- KEYS[1] the lock; ARGV[1] this beat's token, ARGV[2] the TTL in milliseconds.
-- Renew the lock if this beat holds it, take it if nobody does; 1 if this beat holds it now.
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return 1
end
return 0
"""

RELEASE = """
-- KEYS[1] the lock; ARGV[1] this beat's token. Delete the lock only if this beat holds it.
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class BeatLock:
    """The lock as one beat process sees it, under a token of its own."""

    def __init__(self, redis_client: redis.Redis, ttl: float = keys.BEAT_LOCK_TTL):
        self.redis = redis_client
        self.ttl = ttl
        self.token = uuid.uuid4().hex
        self._hold = redis_client.register_script(HOLD)
        self._release = redis_client.register_script(RELEASE)

    def hold(self) -> bool:
        """Take or renew the lock; whether this beat holds it (False if Redis cannot say)."""
        try:
            return bool(self._hold(keys=[keys.BEAT_LOCK], args=[self.token, int(self.ttl * 1000)]))
        except redis.RedisError:
            return False

    def release(self) -> None:
        """Let another beat take over now rather than after the TTL (a clean shutdown)."""
        try:
            self._release(keys=[keys.BEAT_LOCK], args=[self.token])
        except redis.RedisError:
            pass
