"""Beat's lock: one holder at a time, renewed by it, taken over once it stops renewing."""

from __future__ import annotations

import time

import pytest

from app import keys
from app.ops.beat_lock import BeatLock

pytestmark = pytest.mark.any_redis


def test_one_beat_holds_the_lock_and_the_other_stands_by(redis_client):
    first, second = BeatLock(redis_client), BeatLock(redis_client)
    assert first.hold() is True
    assert second.hold() is False
    assert first.hold() is True  # a renewal
    assert redis_client.get(keys.BEAT_LOCK) == first.token


def test_the_holder_renews_the_ttl(redis_client):
    lock = BeatLock(redis_client, ttl=10)
    lock.hold()
    redis_client.pexpire(keys.BEAT_LOCK, 500)
    assert lock.hold() is True
    assert redis_client.pttl(keys.BEAT_LOCK) > 5000


def test_another_beat_takes_over_once_the_holder_stops_renewing(redis_client):
    first, second = BeatLock(redis_client, ttl=0.2), BeatLock(redis_client, ttl=0.2)
    assert first.hold() is True
    time.sleep(0.3)
    assert second.hold() is True
    assert first.hold() is False  # back from a freeze: it stands by


def test_release_lets_another_beat_in_at_once_and_never_frees_anothers_lock(redis_client):
    first, second = BeatLock(redis_client), BeatLock(redis_client)
    first.hold()
    second.release()
    assert second.hold() is False
    first.release()
    assert second.hold() is True
