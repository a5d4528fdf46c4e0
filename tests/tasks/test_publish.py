"""The direct publisher writes exactly the envelope kombu's Redis transport writes."""

from __future__ import annotations

import base64
import json
import time

import pytest
from celery import shared_task
from celery.exceptions import Reject, Retry

import workers
from app import keys
from tasks.base import GatewayTask
from tasks.inbound import process_webhook
from tasks.publish import TaskPublisher, recover_lost_tasks
from tests.stack import queued_tasks
from tests.tasks.test_base import run_as_worker


def test_envelope_matches_kombus_own(redis_client):
    payload = {"object": "whatsapp_business_account", "entry": []}
    process_webhook.apply_async(args=[payload], retry=False, argsrepr="<webhook>")
    theirs = json.loads(redis_client.rpop("inbound"))
    publisher = TaskPublisher(workers.app, redis_client)
    assert publisher.publish_once(
        process_webhook.name,
        [payload],
        queue="inbound",
        dedup_key="wa:test:mark",
        dedup_ttl=60,
        argsrepr="<webhook>",
    )
    ours = json.loads(redis_client.rpop("inbound"))
    assert set(ours) == set(theirs)
    assert {k: v for k, v in ours.items() if k not in ("body", "headers", "properties")} == {
        k: v for k, v in theirs.items() if k not in ("body", "headers", "properties")
    }
    assert base64.b64decode(ours["body"]) == base64.b64decode(theirs["body"])
    varying = {"id", "root_id", "origin"}
    assert {k: v for k, v in ours["headers"].items() if k not in varying} == {
        k: v for k, v in theirs["headers"].items() if k not in varying
    }
    # apply_async also copies its own options (argsrepr) into the properties; workers ignore them.
    assert set(ours["properties"]) == set(theirs["properties"]) - {"argsrepr"}
    for key in ("delivery_mode", "delivery_info", "priority", "body_encoding"):
        assert ours["properties"][key] == theirs["properties"][key]


@pytest.mark.any_redis
def test_mark_and_message_go_together(redis_client):
    publisher = TaskPublisher(workers.app, redis_client)
    args = dict(queue="inbound", dedup_key="wa:test:mark", dedup_ttl=60, argsrepr="x")
    assert publisher.publish_once(process_webhook.name, [{}], **args)
    assert not publisher.publish_once(process_webhook.name, [{}], **args)
    assert redis_client.llen("inbound") == 1
    assert 0 < redis_client.ttl("wa:test:mark") <= 60
    # The task is journaled with the very message queued, until a worker finishes it.
    (message,) = redis_client.lrange("inbound", 0, -1)
    task_id = json.loads(message)["headers"]["id"]
    assert redis_client.hgetall(keys.TASK_JOURNAL) == {task_id: message}
    assert redis_client.zrange(keys.TASK_JOURNAL_DUE, 0, -1) == [task_id]


@shared_task(bind=True, base=GatewayTask, name="tests.journaled")
def journaled(self, outcome: str) -> str:
    """A task that ends as asked: done, retried, handed back, or failed."""
    if outcome == "retry":
        raise self.retry(countdown=60, max_retries=None)
    if outcome == "requeue":
        raise Reject("handed back", requeue=True)
    if outcome == "fail":
        raise ValueError("a defect")
    return outcome


def journal(redis_client, task_id: str) -> None:
    redis_client.hset(keys.TASK_JOURNAL, task_id, "{}")
    redis_client.zadd(keys.TASK_JOURNAL_DUE, {task_id: 1.0})


@pytest.mark.parametrize(
    ("outcome", "raises", "kept"),
    [
        ("done", None, False),
        ("retry", Retry, True),
        ("requeue", Reject, True),
        ("fail", ValueError, False),
    ],
)
def test_a_task_leaves_the_journal_only_when_it_will_not_run_again(
    redis_client, outcome, raises, kept
):
    journal(redis_client, "t-1")
    if raises is None:
        run_as_worker(journaled, "t-1", outcome)
    else:
        with pytest.raises(raises):
            run_as_worker(journaled, "t-1", outcome)
    assert redis_client.hexists(keys.TASK_JOURNAL, "t-1") == kept
    if kept:  # and it was seen alive when it started, so the sweep leaves it alone a while
        assert redis_client.zscore(keys.TASK_JOURNAL_DUE, "t-1") > time.time() - 60


@pytest.mark.any_redis
def test_the_sweep_queues_again_a_task_the_broker_lost(redis_client):
    publisher = TaskPublisher(workers.app, redis_client)
    args = dict(queue="inbound", dedup_key="wa:test:mark", dedup_ttl=60, argsrepr="x")
    publisher.publish_once(process_webhook.name, [{"n": 1}], **args)
    lost = json.loads(redis_client.rpop("inbound"))  # popped by a worker that then died
    task_id = lost["headers"]["id"]
    queued_at = redis_client.zscore(keys.TASK_JOURNAL_DUE, task_id)
    grace = 100.0
    # Not yet past the grace: the broker's own redelivery may still bring it back.
    assert recover_lost_tasks(redis_client, redis_client.llen, grace, now=queued_at + 50) == []
    # Past it, but its queue is not empty: it may simply not have been reached.
    redis_client.lpush("inbound", "another task")
    assert recover_lost_tasks(redis_client, redis_client.llen, grace, now=queued_at + 150) == []
    redis_client.delete("inbound")
    assert recover_lost_tasks(redis_client, redis_client.llen, grace, now=queued_at + 150) == [
        task_id
    ]
    again = json.loads(redis_client.rpop("inbound"))
    assert again["headers"] == lost["headers"] and again["body"] == lost["body"]
    assert again["properties"]["delivery_tag"] != lost["properties"]["delivery_tag"]
    # Given another grace before it could be queued a third time.
    assert recover_lost_tasks(redis_client, redis_client.llen, grace, now=queued_at + 200) == []
    # A task that finished meanwhile leaves the journal instead.
    redis_client.hdel(keys.TASK_JOURNAL, task_id)
    assert recover_lost_tasks(redis_client, redis_client.llen, grace, now=queued_at + 400) == []
    assert not redis_client.exists(keys.TASK_JOURNAL_DUE)


def test_each_conversation_step_is_published_journaled(redis_client):
    from tasks.enqueue import enqueue_answer_turn, enqueue_record_reply, enqueue_record_turn

    turn = {"type": "text", "id": "wamid.turn-1", "text": "¿Cuánto cuesta?"}
    enqueue_record_turn(turn)
    enqueue_answer_turn(turn)
    enqueue_record_reply({"type": "reply", "id": "reply-1"})
    queued = queued_tasks(redis_client, "context") + queued_tasks(redis_client, "inbound")
    assert [(name, args) for name, args, _ in queued] == [
        ("context.record_turn", [turn]),
        ("context.record_reply", [{"type": "reply", "id": "reply-1"}]),
        ("inbound.answer_turn", [turn]),
    ]
    messages = redis_client.lrange("context", 0, -1) + redis_client.lrange("inbound", 0, -1)
    journal = redis_client.hgetall(keys.TASK_JOURNAL)
    assert sorted(journal.values()) == sorted(messages)
    assert redis_client.zcard(keys.TASK_JOURNAL_DUE) == 3
    # What Flower and the logs show of them: ids, never the customer's words.
    assert all("Cuánto" not in json.loads(m)["headers"]["argsrepr"] for m in messages)


@shared_task(base=GatewayTask, name="tests.hands_on")
def hands_on(turn: dict) -> None:
    """A step that hands a turn on, as a webhook task does."""
    from tasks.enqueue import enqueue_record_turn

    enqueue_record_turn(turn)


def test_a_step_published_from_a_task_is_its_child(redis_client):
    hands_on.apply(args=[{"type": "text", "id": "wamid.turn-2"}], task_id="webhook-task")
    headers = json.loads(redis_client.lindex("context", 0))["headers"]
    assert (headers["parent_id"], headers["root_id"]) == ("webhook-task", "webhook-task")
