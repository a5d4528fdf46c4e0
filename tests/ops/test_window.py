from __future__ import annotations

import pytest
import redis

from app.ops.window import EventWindow

pytestmark = pytest.mark.any_redis


def test_totals_add_up_the_buckets_inside_the_window_only(redis_client):
    window = EventWindow(redis_client, bucket_seconds=10)
    now = 1_000_000.0
    window.add({"sent": 3, "send_errors": 1}, now=now - 75)  # outside a 60 s window
    window.add({"sent": 2}, now=now - 55)
    window.add({"sent": 1, "processing_sum": 0.25}, now=now - 5)
    window.add({"processing_sum": 0.5}, now=now)
    assert window.totals(60, now=now) == {"sent": 3.0, "processing_sum": 0.75}
    assert window.totals(120, now=now)["send_errors"] == 1.0


def test_buckets_expire_and_adding_never_raises_without_redis(redis_client):
    window = EventWindow(redis_client)
    window.add({"sent": 1})
    (key,) = redis_client.keys("wa:ops:window:*")
    assert 0 < redis_client.ttl(key) <= 3600
    dead = redis.Redis(port=1, socket_connect_timeout=0.2)
    EventWindow(dead).add({"sent": 1})  # the work being measured must not fail with its metrics
