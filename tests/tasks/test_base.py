"""The task infrastructure: deferrals the broker can honour and the poison guard."""

from __future__ import annotations

import pytest

import celeryconfig
from app import keys
from app.delivery import dead_letters as dl
from app.delivery.dead_letters import DeadLetterStore
from app.delivery.messages import DEAD_LETTERED, MessageStore
from tasks.base import MAX_REDELIVERIES, SEND_POLICY, bounded_countdown
from tasks.outbound import send_message

PAYLOAD = {
    "messaging_product": "whatsapp",
    "to": "573001234567",
    "type": "text",
    "text": {"body": "hi"},
}


def test_no_countdown_can_outlast_the_visibility_timeout():
    vt = celeryconfig.VISIBILITY_TIMEOUT
    assert celeryconfig.MAX_DEFERRAL < vt
    assert bounded_countdown(10 * vt) == celeryconfig.MAX_DEFERRAL
    assert bounded_countdown(-1) == 0
    assert SEND_POLICY.cap <= celeryconfig.MAX_DEFERRAL
    assert SEND_POLICY.bounded(10 * vt) <= celeryconfig.MAX_DEFERRAL
    # Nor can a running task: its hard limit is inside the timeout too.
    assert celeryconfig.task_soft_time_limit < celeryconfig.task_time_limit <= vt / 2
    # The sweep for lost sends waits until the broker's own redelivery has had its turn.
    assert celeryconfig.SEND_RECOVERY_GRACE > vt
    assert celeryconfig.beat_schedule["outbound.recover_lost_sends"]["options"]["queue"] == (
        "send.high"
    )
    # Abandoned tasks are looked for often enough to come back soon after the timeout.
    assert celeryconfig.broker_transport_options["unacked_restore_interval"] <= max(1, vt / 10)


def run_as_worker(task, task_id: str, *args):
    """Run ``task`` the way the worker's tracer does: with a request that has an id."""
    task.push_request(id=task_id, args=args, kwargs={})
    try:
        return task(*args)
    finally:
        task.pop_request()


def test_a_task_that_killed_its_workers_too_often_is_dead_lettered_as_poison(redis_client):
    store = MessageStore(redis_client)
    store.create("m1", PAYLOAD, "normal")
    # Each run that killed its worker left its start counted and never uncounted.
    redis_client.set(keys.TASK_UNFINISHED.format(task_id="t-1"), MAX_REDELIVERIES + 1)
    assert run_as_worker(send_message, "t-1", "m1") == dl.POISON
    letter = DeadLetterStore(redis_client).get("m1")
    assert letter.reason == dl.POISON and "killed" in letter.error["message"]
    assert store.get("m1").status == DEAD_LETTERED
    assert not redis_client.exists(keys.TASK_UNFINISHED.format(task_id="t-1"))


def test_a_run_that_finishes_uncounts_itself(redis_client):
    MessageStore(redis_client).create("m1", PAYLOAD, "normal")
    redis_client.hset(MessageStore.key("m1"), "status", DEAD_LETTERED)  # nothing left to send
    assert run_as_worker(send_message, "t-2", "m1") == "finished"
    assert not redis_client.exists(keys.TASK_UNFINISHED.format(task_id="t-2"))


def test_a_run_beside_one_that_died_leaves_the_death_counted(redis_client):
    MessageStore(redis_client).create("m1", PAYLOAD, "normal")
    redis_client.hset(MessageStore.key("m1"), "status", DEAD_LETTERED)
    key = keys.TASK_UNFINISHED.format(task_id="t-3")
    redis_client.set(key, 1)  # an earlier run whose worker was killed
    run_as_worker(send_message, "t-3", "m1")
    assert redis_client.get(key) == "1"


def test_a_redis_failure_hands_the_message_back(monkeypatch):
    from celery.exceptions import Reject
    from redis.exceptions import ConnectionError as RedisConnectionError

    import tasks.base
    import workers
    from tasks.base import GatewayTask

    monkeypatch.setattr(tasks.base, "REDIS_FAILURE_PAUSE", 0)

    @workers.app.task(base=GatewayTask, name="tests.redis_down", shared=False)
    def redis_down():
        raise RedisConnectionError("Connection refused")

    @workers.app.task(base=GatewayTask, name="tests.value_error", shared=False)
    def broken():
        raise ValueError("bug")

    with pytest.raises(Reject) as info:
        redis_down()
    assert info.value.requeue is True
    with pytest.raises(ValueError):
        broken()
