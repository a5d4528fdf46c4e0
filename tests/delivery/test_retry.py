from __future__ import annotations

import pytest

from app.config import ConfigError
from app.delivery.retry import RetryPolicy
from tests.stack import settings_of


def test_backoff_is_full_jitter_under_an_exponential_ceiling():
    policy = RetryPolicy(max_deferral=1800, base_delay=2, max_delay=300)
    for failures, ceiling in ((1, 2), (2, 4), (3, 8), (10, 300), (500, 300)):
        delays = [policy.backoff(failures) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # spread over the range, not a constant


def test_no_delay_ever_exceeds_the_deferral_cap():
    policy = RetryPolicy(max_deferral=5, base_delay=2, max_delay=300)
    assert policy.cap == 5
    assert all(policy.backoff(20) <= 5 for _ in range(100))
    assert policy.after_throttle(3600, 1) <= 5  # Meta's Retry-After, capped
    assert policy.bounded(10_000) == 5 and policy.bounded(-3) == 0


def test_retry_after_is_honoured_with_a_little_jitter():
    policy = RetryPolicy(max_deferral=1800)
    delays = [policy.after_throttle(7, 1) for _ in range(50)]
    assert all(7 <= d <= 7.7 for d in delays)
    assert all(0 <= policy.after_throttle(None, 1) <= policy.base_delay for _ in range(50))


def test_budgets_come_from_the_environment_and_are_validated():
    policy = RetryPolicy.from_settings(
        60,
        settings_of(
            {"SEND_MAX_ATTEMPTS": "3", "SEND_MAX_THROTTLED": "9", "SEND_RETRY_MAX_DELAY": "90"}
        ),
    )
    assert (policy.max_attempts, policy.max_throttled, policy.cap) == (3, 9, 60)
    with pytest.raises(ValueError):
        RetryPolicy(max_deferral=60, max_attempts=0)
    with pytest.raises(ConfigError, match="SEND_MAX_ATTEMPTS") as info:
        settings_of({"SEND_MAX_ATTEMPTS": "abc"})
    assert "abc" not in str(info.value)
