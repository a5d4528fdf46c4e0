from __future__ import annotations

import pytest
from kombu.transport.redis import PRIORITY_STEPS, Channel

import workers
from app.ops.queues import (
    KOMBU_PRIORITY_SEPARATOR,
    KOMBU_PRIORITY_STEPS,
    priority_lists,
    queue_depths,
    unacked_count,
)
from tasks.outbound import send_message

pytestmark = pytest.mark.any_redis


def test_the_constants_are_kombus_own():
    assert KOMBU_PRIORITY_SEPARATOR == Channel.sep
    assert list(KOMBU_PRIORITY_STEPS) == list(PRIORITY_STEPS)


def test_priority_lists_name_the_plain_queue_and_each_step():
    assert priority_lists("send.high") == [
        "send.high",
        "send.high\x06\x163",
        "send.high\x06\x166",
        "send.high\x06\x169",
    ]


@pytest.mark.real_redis(reason="Celery publishes to the session server, its broker")
def test_depth_counts_tasks_published_with_every_priority(redis_client):
    for priority in (0, 1, 3, 5, 6, 9, 9):
        send_message.apply_async(args=["m"], queue="send.bulk", priority=priority)
    depths = queue_depths(redis_client, ["send.bulk", "send.high"])
    assert depths == {"send.bulk": 7, "send.high": 0}
    assert redis_client.llen("send.bulk") < 7  # the plain list alone misses the prioritised ones
    with workers.app.connection_for_write() as connection:
        assert depths["send.bulk"] == connection.default_channel._size("send.bulk")


def test_unacked_counts_kombus_hash(redis_client):
    assert unacked_count(redis_client) == 0
    redis_client.hset("unacked", mapping={"tag-1": "{}", "tag-2": "{}"})
    assert unacked_count(redis_client) == 2


@pytest.mark.unit
def test_every_send_lane_is_named_as_the_depth_counts_it():
    import celeryconfig
    from app.ops.queues import SEND_QUEUE_PREFIX

    assert celeryconfig.SEND_QUEUES == {
        lane: f"{SEND_QUEUE_PREFIX}{lane}" for lane in celeryconfig.SEND_QUEUES
    }


def test_the_inbound_depth_counts_the_status_webhooks_waiting_in_their_lane(redis_client):
    from app import keys

    redis_client.lpush("inbound", "{}")
    redis_client.lpush(keys.STATUS_LANE, "{}", "{}", "{}")
    assert queue_depths(redis_client, ["inbound", "context"]) == {"inbound": 4, "context": 0}


@pytest.mark.unit
def test_the_work_waiting_beside_a_queue_is_named_after_a_real_queue():
    import celeryconfig
    from app.ops.queues import WAITING_BESIDE

    assert set(WAITING_BESIDE) <= {queue.name for queue in celeryconfig.task_queues}
