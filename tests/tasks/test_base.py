from __future__ import annotations

import pytest
from celery.exceptions import Reject
from redis.exceptions import ConnectionError as RedisConnectionError

import tasks.base
import workers
from tasks.base import GatewayTask, backoff_delay, deferral


@pytest.fixture(autouse=True)
def no_pause(monkeypatch):
    monkeypatch.setattr(tasks.base, "REDIS_FAILURE_PAUSE", 0)


def test_redis_failure_hands_the_message_back():
    @workers.app.task(base=GatewayTask, name="tests.redis_down", shared=False)
    def redis_down():
        raise RedisConnectionError("Connection refused")

    with pytest.raises(Reject) as info:
        redis_down()
    assert info.value.requeue is True


def test_other_errors_are_not_touched():
    @workers.app.task(base=GatewayTask, name="tests.value_error", shared=False)
    def broken():
        raise ValueError("bug")

    with pytest.raises(ValueError):
        broken()


def test_backoff_is_full_jitter_under_the_cap():
    delays = [backoff_delay(10, base=2, cap=30) for _ in range(500)]
    assert all(0 <= d <= 30 for d in delays)
    assert max(delays) > 20 and min(delays) < 10  # spread over the whole range
    assert all(0 <= backoff_delay(0, base=2, cap=30) <= 2 for _ in range(100))


def test_server_delay_wins_but_never_past_the_cap():
    assert deferral(7, retries=5) == 7
    assert deferral(10**6, retries=0) == tasks.base.RETRY_MAX_DELAY
    assert (
        tasks.base.RETRY_MAX_DELAY
        <= workers.app.conf.broker_transport_options["visibility_timeout"] / 2
    )
