"""The status lane: status-only webhooks accepted by the receiver, applied many to a task, and
none lost to a dead worker, a lost task or a bad body (tasks.statuslane)."""

from __future__ import annotations

import json
import time

import pytest

import tasks.inbound
from app import keys
from app.config import get_settings
from app.delivery import dead_letters as dl
from app.delivery.dead_letters import DeadLetterStore
from app.delivery.messages import DELIVERED, READ, SENT, MessageStore
from app.web import create_app
from app.whatsapp.signature import SIGNATURE_HEADER, sign
from tasks.base import MAX_REDELIVERIES
from tasks.statuslane import APPLY_STATUSES, status_lane
from tests.stack import TEST_CREDENTIALS, queued_tasks, text_webhook

SECRET = TEST_CREDENTIALS["WHATSAPP_WEBHOOK_SECRET"]
CUSTOMER = "573001234567"
PAYLOAD = {"messaging_product": "whatsapp", "to": CUSTOMER, "type": "text", "text": {"body": "x"}}


@pytest.fixture
def client(redis_client):
    return create_app({"SETTINGS": get_settings(), "TESTING": True}).test_client()


def post(client, payload: dict) -> str:
    body = json.dumps(payload).encode()
    response = client.post(
        "/webhooks/whatsapp",
        data=body,
        headers={SIGNATURE_HEADER: sign(body, SECRET)},
        content_type="application/json",
    )
    assert response.status_code == 200, response.json
    return response.json["status"]


def status_webhook(*items: tuple[str, str]) -> dict:
    """A webhook of statuses alone, one per (wamid, status)."""
    webhook = text_webhook(CUSTOMER, "ignored")
    value = webhook["entry"][0]["changes"][0]["value"]
    del value["messages"], value["contacts"]
    value["statuses"] = [
        {
            "id": wamid,
            "status": status,
            "timestamp": str(int(time.time())),
            "recipient_id": CUSTOMER,
        }
        for wamid, status in items
    ]
    return webhook


def sent_messages(redis_client, count: int) -> MessageStore:
    """Messages m0..m<count-1>, accepted by Meta as wamid.out0...; returns their store."""
    store = MessageStore(redis_client)
    for i in range(count):
        store.create(f"m{i}", PAYLOAD, "high")
        store.mark_sending(f"m{i}", 1)
        store.record_wamid(f"m{i}", f"wamid.out{i}")
    return store


def lane_tasks(redis_client) -> list[str]:
    return [name for name, _, _ in queued_tasks(redis_client, "inbound")]


def run_queued_lane_task(redis_client) -> dict:
    """Take the queued ``inbound.apply_statuses`` task off the queue and run it as a worker would
    (its id, its bookkeeping)."""
    (raw,) = redis_client.lrange("inbound", 0, -1)
    redis_client.delete("inbound")
    task_id = json.loads(raw)["headers"]["id"]
    assert json.loads(raw)["headers"]["task"] == APPLY_STATUSES
    return tasks.inbound.apply_statuses.apply(task_id=task_id).get()


def test_status_webhooks_join_the_lane_behind_a_single_task(client, redis_client):
    bodies = [status_webhook((f"wamid.out{i}", "delivered")) for i in range(3)]
    assert [post(client, body) for body in bodies] == ["accepted"] * 3
    # As Meta signed them, oldest first to be taken; one task for all three, journaled.
    lane = redis_client.lrange(keys.STATUS_LANE, 0, -1)[::-1]
    assert [json.loads(body) for body in lane] == bodies
    assert lane_tasks(redis_client) == [APPLY_STATUSES]
    assert redis_client.hlen(keys.TASK_JOURNAL) == 1
    # A redelivery is a duplicate, as for any webhook.
    assert post(client, bodies[0]) == "duplicate"
    assert redis_client.llen(keys.STATUS_LANE) == 3


def test_a_webhook_with_messages_or_other_fields_is_a_task_of_its_own(client, redis_client):
    mixed = text_webhook(CUSTOMER, "Hola")
    mixed["entry"][0]["changes"][0]["value"]["statuses"] = status_webhook(("wamid.out0", "read"))[
        "entry"
    ][0]["changes"][0]["value"]["statuses"]
    templates = {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "1", "changes": [{"field": "message_template_status_update", "value": {}}]}
        ],
    }
    assert post(client, mixed) == "accepted" and post(client, templates) == "accepted"
    assert lane_tasks(redis_client) == ["inbound.process_webhook"] * 2
    assert redis_client.llen(keys.STATUS_LANE) == 0


def test_the_task_applies_every_waiting_webhook_and_later_ones_queue_a_task_again(
    client, redis_client
):
    store = sent_messages(redis_client, 3)
    for i in range(3):
        post(client, status_webhook((f"wamid.out{i}", "delivered")))
    post(client, status_webhook(("wamid.out0", "read"), ("wamid.out1", "read")))
    assert run_queued_lane_task(redis_client) == {"webhooks": 4}
    assert [store.get(f"m{i}").status for i in range(3)] == [READ, READ, DELIVERED]
    # Nothing left behind: lane, batches, journal.
    assert redis_client.llen(keys.STATUS_LANE) == 0
    assert not redis_client.smembers(keys.STATUS_LANE_TAKERS)
    assert redis_client.hlen(keys.TASK_JOURNAL) == 0
    # The task opened the lane: the next webhook queues a task of its own.
    post(client, status_webhook(("wamid.out2", "read")))
    assert lane_tasks(redis_client) == [APPLY_STATUSES]
    run_queued_lane_task(redis_client)
    assert store.get("m2").status == READ


def test_a_run_after_its_worker_died_applies_the_batch_it_had_taken(client, redis_client):
    store = sent_messages(redis_client, 2)
    post(client, status_webhook(("wamid.out0", "delivered")))
    (raw,) = redis_client.lrange("inbound", 0, -1)
    task_id = json.loads(raw)["headers"]["id"]
    # The first run took the batch, then its worker died before applying it.
    assert len(status_lane().take(task_id, 100)) == 1
    post(client, status_webhook(("wamid.out1", "delivered")))
    assert redis_client.llen(keys.STATUS_LANE) == 1
    # The broker hands the same task to another worker.
    redis_client.delete("inbound")
    assert tasks.inbound.apply_statuses.apply(task_id=task_id).get() == {"webhooks": 2}
    assert [store.get(f"m{i}").status for i in range(2)] == [DELIVERED, DELIVERED]
    assert not redis_client.smembers(keys.STATUS_LANE_TAKERS)


def test_the_sweep_puts_back_a_batch_nobody_will_apply_and_queues_a_task(client, redis_client):
    store = sent_messages(redis_client, 1)
    post(client, status_webhook(("wamid.out0", "delivered")))
    # A task took the batch and then left the journal without applying it; no task is queued.
    status_lane().take("gone-task", 100)
    redis_client.delete("inbound", keys.STATUS_LANE_NUDGE)
    redis_client.delete(keys.TASK_JOURNAL, keys.TASK_JOURNAL_DUE)
    tasks.inbound.recover_lost_tasks_task()
    assert redis_client.llen(keys.STATUS_LANE) == 1
    assert lane_tasks(redis_client) == [APPLY_STATUSES]
    run_queued_lane_task(redis_client)
    assert store.get("m0").status == DELIVERED
    # A batch whose task will still run (journaled) is left to it.
    post(client, status_webhook(("wamid.out0", "read")))
    status_lane().take("journaled-task", 100)
    redis_client.hset(keys.TASK_JOURNAL, "journaled-task", "{}")
    tasks.inbound.recover_lost_tasks_task()
    assert redis_client.smembers(keys.STATUS_LANE_TAKERS) == {"journaled-task"}


def test_a_bad_webhook_is_dead_lettered_whole_and_its_batch_goes_on(client, redis_client):
    store = sent_messages(redis_client, 2)
    post(client, status_webhook(("wamid.out0", "delivered")))
    # Shaped as statuses by the look the receiver takes, refused where it is read.
    hostile = status_webhook(("wamid.out1", "read"))
    hostile["object"] = "page"
    status_lane().push(json.dumps(hostile), dedup_key="wa:test:seen", dedup_ttl=60)
    post(client, status_webhook(("wamid.out1", "delivered")))
    assert run_queued_lane_task(redis_client) == {"webhooks": 3}
    assert [store.get(f"m{i}").status for i in range(2)] == [DELIVERED, DELIVERED]
    (letter,) = DeadLetterStore(redis_client).list(direction="inbound")
    assert (letter.kind, letter.reason, letter.task) == (
        "webhook",
        dl.MALFORMED,
        "inbound.process_webhook",
    )
    assert letter.payload == hostile


def test_a_status_with_a_hostile_value_is_dead_lettered_and_its_siblings_applied(
    client, redis_client
):
    store = sent_messages(redis_client, 2)
    webhook = status_webhook(("wamid.out0", "delivered"), ("wamid.out1", "read"))
    webhook["entry"][0]["changes"][0]["value"]["statuses"][0]["timestamp"] = "9" * 4000
    post(client, webhook)
    run_queued_lane_task(redis_client)
    assert [store.get(f"m{i}").status for i in range(2)] == [SENT, READ]
    (letter,) = DeadLetterStore(redis_client).list(direction="inbound")
    assert (letter.kind, letter.reason) == ("status", dl.MALFORMED)


def test_a_batch_that_killed_its_workers_is_dead_lettered_and_the_lane_goes_on(
    client, redis_client
):
    store = sent_messages(redis_client, 2)
    post(client, status_webhook(("wamid.out0", "delivered")))
    (raw,) = redis_client.lrange("inbound", 0, -1)
    task_id = json.loads(raw)["headers"]["id"]
    redis_client.delete("inbound")
    status_lane().take(task_id, 100)
    post(client, status_webhook(("wamid.out1", "delivered")))  # behind the poison batch
    # Every earlier run of the task died with its worker.
    redis_client.set(keys.TASK_UNFINISHED.format(task_id=task_id), MAX_REDELIVERIES + 1)
    redis_client.delete("inbound", keys.STATUS_LANE_NUDGE)
    tasks.inbound.apply_statuses.apply(task_id=task_id).get()
    (letter,) = DeadLetterStore(redis_client).list(direction="inbound")
    assert (letter.kind, letter.reason, letter.task) == (
        "webhook",
        dl.POISON,
        "inbound.process_webhook",
    )
    assert store.get("m0").status == SENT
    # The webhook behind it has a task again.
    run_queued_lane_task(redis_client)
    assert store.get("m1").status == DELIVERED


def test_a_batch_learns_each_customer_once_and_every_status_still_finds_them(
    client, redis_client, monkeypatch
):
    from app.conversations.customers import CustomerBook, kind_of

    learnt = []
    learn = CustomerBook.learn
    monkeypatch.setattr(
        CustomerBook, "learn", lambda self, *a, **k: learnt.append(a) or learn(self, *a, **k)
    )
    store = sent_messages(redis_client, 1)
    for status in ("sent", "delivered", "read"):
        post(client, status_webhook(("wamid.out0", status)))
    run_queued_lane_task(redis_client)
    assert store.get("m0").status == READ
    assert len(learnt) == 1
    number = TEST_CREDENTIALS["WHATSAPP_PHONE_NUMBER_ID"]
    assert redis_client.exists(
        CustomerBook(redis_client).id_key(number, kind_of(CUSTOMER), CUSTOMER)
    )


def test_a_body_that_is_not_json_is_dead_lettered_as_it_came(client, redis_client):
    store = sent_messages(redis_client, 1)
    status_lane().push("{not json", dedup_key="wa:test:seen", dedup_ttl=60)
    post(client, status_webhook(("wamid.out0", "delivered")))
    assert run_queued_lane_task(redis_client) == {"webhooks": 2}
    assert store.get("m0").status == DELIVERED
    (letter,) = DeadLetterStore(redis_client).list(direction="inbound")
    assert (letter.reason, letter.payload) == (dl.MALFORMED, "{not json")
