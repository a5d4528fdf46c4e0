"""Each enqueue helper puts the task it is named after on that task's queue, under a name the
worker knows, with arguments the task takes."""

from __future__ import annotations

import inspect

import pytest

from tasks import enqueue
from tests.stack import queued_tasks
from workers import app

TURN = {"type": "text", "id": "wamid.turn-1"}
WEBHOOK = {"object": "whatsapp_business_account", "entry": []}
EVENT = {"id": "evt_1", "type": "message.received", "created_at": 1.0, "data": {}}
HANDOFF = {"phone_number_id": "106540352242922", "customer": "573001234567", "by": "customer"}

# helper, its arguments, the task it queues, the task's arguments, the queue
CASES = [
    (enqueue.enqueue_record_turn, [TURN], "context.record_turn", [TURN], "context"),
    (enqueue.enqueue_record_reply, [TURN], "context.record_reply", [TURN], "context"),
    (enqueue.enqueue_answer_turn, [TURN], "inbound.answer_turn", [TURN], "inbound"),
    (enqueue.enqueue_process_webhook, [WEBHOOK], "inbound.process_webhook", [WEBHOOK], "inbound"),
    (enqueue.enqueue_send_message, ["m1", "high"], "outbound.send_message", ["m1"], "send.high"),
    (
        enqueue.enqueue_deliver_event,
        ["sub_1", EVENT],
        "events.deliver_event",
        ["sub_1", EVENT],
        "events",
    ),
    (
        enqueue.enqueue_notify_handoff,
        [HANDOFF],
        "alerts.notify_handoff",
        [HANDOFF],
        "alerts",
    ),
    (
        enqueue.enqueue_send_batch,
        [["m1", "m2"], "bulk"],
        "outbound.send_batch",
        [["m1", "m2"], "bulk"],
        "send.bulk",
    ),
    (
        enqueue.enqueue_dispatch_campaign,
        ["c1", 200],
        "campaigns.dispatch_campaign",
        ["c1", 200],
        "send.bulk",
    ),
]


def test_every_helper_is_checked_here():
    helpers = {
        name
        for name, member in inspect.getmembers(enqueue, inspect.isfunction)
        if name.startswith("enqueue_") and member.__module__ == enqueue.__name__
    }
    # enqueue_sends only chooses between the two send helpers (see tests/tasks/test_outbound.py).
    assert helpers == {case[0].__name__ for case in CASES} | {"enqueue_sends"}


@pytest.mark.parametrize(
    ("helper", "helper_args", "task", "task_args", "queue"),
    CASES,
    ids=[case[0].__name__ for case in CASES],
)
def test_a_helper_queues_the_task_it_is_named_after(
    redis_client, helper, helper_args, task, task_args, queue
):
    assert helper.__name__ == "enqueue_" + task.split(".")[1]
    helper(*helper_args)
    assert [queued[:2] for queued in queued_tasks(redis_client, queue)] == [(task, task_args)]
    # As the worker would run it: a task of its modules, taking these arguments.
    app.loader.import_default_modules()
    inspect.signature(app.tasks[task].run).bind(*task_args)


def test_requeue_runs_a_conversation_step_again_on_its_queue(redis_client):
    enqueue.requeue("context.record_turn", TURN)
    enqueue.requeue("inbound.process_webhook", WEBHOOK)
    assert [q[:2] for q in queued_tasks(redis_client, "context")] == [
        ("context.record_turn", [TURN])
    ]
    assert [q[:2] for q in queued_tasks(redis_client, "inbound")] == [
        ("inbound.process_webhook", [WEBHOOK])
    ]
    with pytest.raises(ValueError):
        enqueue.requeue("outbound.send_message", "m1")


def test_requeue_delivers_an_event_again_to_its_subscription(redis_client):
    enqueue.requeue("events.deliver_event", {"subscription_id": "sub_1", "event": EVENT})
    assert [q[:2] for q in queued_tasks(redis_client, "events")] == [
        ("events.deliver_event", ["sub_1", EVENT])
    ]
