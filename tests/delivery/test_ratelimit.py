from __future__ import annotations

import threading
import time

import pytest

from app import keys
from app.config import MAX_SENDER_RATE, parse_rates
from app.delivery.ratelimit import SendRateLimiter

pytestmark = pytest.mark.any_redis

NUMBER = "106540352242922"


@pytest.fixture
def limiter(redis_client):
    return SendRateLimiter(redis_client, default_rate=20, burst_seconds=0.1, pair_burst=3)


def test_a_burst_goes_at_once_then_callers_are_spread_one_interval_apart(limiter):
    waits = [limiter.acquire(NUMBER, f"5730012345{i:02d}", "high") for i in range(6)]
    assert waits[:2] == [0.0, 0.0]  # burst of 2 at 20/s
    deferred = waits[2:]
    assert all(w > 0 for w in deferred)
    gaps = [b - a for a, b in zip(deferred, deferred[1:], strict=False)]
    assert all(0.04 < gap < 0.06 for gap in gaps), gaps  # one interval (50 ms) apart, no herd


def test_a_refused_caller_gets_a_token_when_it_comes_back(limiter):
    assert limiter.acquire(NUMBER, "573001234567", "high") == 0.0
    assert limiter.acquire(NUMBER, "573001234568", "high") == 0.0
    wait = limiter.acquire(NUMBER, "573001234569", "high")
    time.sleep(wait + 0.01)
    assert limiter.acquire(NUMBER, "573001234569", "high") == 0.0


def test_bulk_keeps_headroom_so_a_reply_finds_a_token(redis_client):
    limiter = SendRateLimiter(redis_client, default_rate=80, burst_seconds=0.1)  # burst 8
    granted = 0
    while limiter.acquire(NUMBER, f"57300{granted:07d}", "bulk") == 0.0:
        granted += 1
    assert granted == 4  # bulk may use half the burst
    assert limiter.acquire(NUMBER, "573009999999", "high") == 0.0
    # Normal may use three quarters: 6 in all, so the high reply left it exactly one more.
    assert limiter.acquire(NUMBER, "573009999998", "normal") == 0.0
    assert limiter.acquire(NUMBER, "573009999997", "normal") > 0


def test_pair_limit_per_recipient_and_nothing_taken_when_refused(redis_client):
    limiter = SendRateLimiter(redis_client, default_rate=1000, pair_interval=6, pair_burst=3)
    to = "573001234567"
    assert [limiter.acquire(NUMBER, to) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.acquire(NUMBER, to)
    assert 5.5 < wait <= 6.1
    # Other recipients are not held back, and the refusal took no token from the number.
    assert limiter.acquire(NUMBER, "573001234568") == 0.0
    sender_tat = float(redis_client.hget(keys.RATE_SENDER.format(phone_number_id=NUMBER), "tat"))
    assert sender_tat - time.time() < 0.01  # 4 grants at 1000/s, not 5


def test_buckets_are_per_number_and_configurable(redis_client):
    limiter = SendRateLimiter(redis_client, default_rate=1, rates={"2222222": 1000})
    assert limiter.acquire("1111111", None) == 0.0
    assert limiter.acquire("1111111", None) > 0
    assert all(limiter.acquire("2222222", None) == 0.0 for _ in range(50))


def test_concurrent_callers_never_exceed_burst_plus_rate(redis_client):
    rate, burst = 50, 5
    limiter = SendRateLimiter(redis_client, default_rate=rate, burst_seconds=burst / rate)
    grants: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + 1.5

    def hammer(n: int) -> None:
        i = 0
        while time.monotonic() < stop:
            i += 1
            if limiter.acquire(NUMBER, f"57{n}{i}", "high") == 0.0:
                with lock:
                    grants.append(time.monotonic())

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    grants.sort()
    worst = max(sum(1 for g in grants if s <= g < s + 1.0) for s in grants)
    assert worst <= burst + rate
    assert len(grants) >= rate  # it did let messages through


def test_rates_are_validated():
    assert parse_rates("106540352242922=200, 106540352242923=1000") == {
        "106540352242922": 200.0,
        "106540352242923": 1000.0,
    }
    assert parse_rates("") == {}
    for bad in ("106540352242922", "abc=10", "1065=0", f"1065={MAX_SENDER_RATE + 1}"):
        with pytest.raises(ValueError, match="SEND_RATE_LIMITS"):
            parse_rates(bad)


def test_limiter_refuses_a_rate_above_metas_highest_tier(redis_client):
    with pytest.raises(ValueError):
        SendRateLimiter(redis_client, default_rate=1001)
