"""Emitting and signing events: nothing queued without a subscriber, one delivery task per
subscriber, stable ids, per-conversation sequence numbers, and signatures a receiver can check."""

from __future__ import annotations

import json
import logging

import pytest

import celeryconfig
from app.credentials import generate_key, load_cipher
from app.events.delivery import (
    body_of,
    emit,
    event_id,
    sign,
    verify_signature,
)
from app.events.subscriptions import MESSAGE_RECEIVED, MESSAGE_STATUS, SubscriptionStore
from tests.stack import queued_tasks


def test_nobody_subscribed_means_nothing_queued_and_data_never_built(redis_client):
    def data():
        raise AssertionError("built for nobody")

    assert emit(redis_client, MESSAGE_RECEIVED, data, conversation_id="573001234567") is None
    assert queued_tasks(redis_client, celeryconfig.QUEUE_EVENTS) == []
    assert redis_client.keys("wa:events:seq:*") == []


def test_each_subscriber_gets_a_delivery_task_of_the_same_event(redis_client):
    store = SubscriptionStore(redis_client, load_cipher(generate_key()))
    first, _ = store.create("https://a.example.com/", [MESSAGE_RECEIVED])
    second, _ = store.create("https://b.example.com/", [MESSAGE_RECEIVED, MESSAGE_STATUS])
    store.create("https://c.example.com/", [MESSAGE_STATUS])

    event = emit(
        redis_client, MESSAGE_RECEIVED, {"text": "Hola"}, conversation_id="57300", key="w1"
    )
    again = emit(
        redis_client, MESSAGE_RECEIVED, {"text": "Hola"}, conversation_id="57300", key="w1"
    )

    tasks = queued_tasks(redis_client, celeryconfig.QUEUE_EVENTS)
    assert sorted((name, args[0]) for name, args, _ in tasks) == sorted(
        [("events.deliver_event", s.id) for s in (first, second, first, second)]
    )
    assert event == again == event_id(MESSAGE_RECEIVED, "w1")  # the same occurrence, one id
    sequences = sorted({args[1]["conversation"]["sequence"] for _, args, _ in tasks})
    assert sequences == [1, 2]  # numbered in the conversation, emission after emission
    assert all("Hola" not in (shown or "") for _, _, shown in tasks)  # not in logs or Flower


def test_an_event_that_cannot_be_queued_is_logged_not_raised(redis_client, monkeypatch, caplog):
    SubscriptionStore(redis_client, load_cipher(generate_key())).create(
        "https://a.example.com/", [MESSAGE_RECEIVED]
    )

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker at redis://secret@host")

    monkeypatch.setattr("tasks.enqueue.enqueue_deliver_event", broker_down)
    with caplog.at_level(logging.ERROR):
        assert emit(redis_client, MESSAGE_RECEIVED, {"text": "Hola"}) is None
    assert "not queued: ConnectionError" in caplog.text and "secret" not in caplog.text


def test_an_unknown_event_type_is_a_programming_error(redis_client):
    with pytest.raises(ValueError):
        emit(redis_client, "message.deleted", {})


def test_a_signature_verifies_with_its_secret_body_and_time_only():
    body = body_of({"id": "evt_1", "type": MESSAGE_RECEIVED, "data": {"text": "¿Hola?"}})
    header = sign("whsec_a", 1_800_000_000, body)
    assert header.startswith("t=1800000000,v1=")
    assert verify_signature("whsec_a", header, body, now=1_800_000_100)
    assert not verify_signature("whsec_b", header, body, now=1_800_000_100)
    assert not verify_signature("whsec_a", header, body + b" ", now=1_800_000_100)
    assert not verify_signature("whsec_a", header, body, now=1_800_000_000 + 301)  # replayed
    assert not verify_signature("whsec_a", "v1=abc", body)
    assert not verify_signature("whsec_a", "t=x,v1=abc", body)
    assert json.loads(body)["data"]["text"] == "¿Hola?"


def test_a_dead_letter_is_announced_but_an_event_dead_letter_is_not(redis_client):
    from app.delivery import dead_letters as dl
    from app.delivery.dead_letters import DeadLetterStore
    from app.events.subscriptions import DEAD_LETTER_CREATED

    subscription, _ = SubscriptionStore(redis_client, load_cipher(generate_key())).create(
        "https://a.example.com/", [DEAD_LETTER_CREATED]
    )
    store = DeadLetterStore(redis_client)
    letter = store.add_inbound(
        "message", dl.MALFORMED, {"id": "wamid.1"}, task="inbound.process_webhook", payload={}
    )
    event = {"id": "evt_1", "type": DEAD_LETTER_CREATED, "created_at": 1.0, "data": {}}
    store.add_event(subscription.id, event, dl.RETRIES_EXHAUSTED, {"code": 500}, attempts=8)

    ((name, (to, announced), _),) = queued_tasks(redis_client, celeryconfig.QUEUE_EVENTS)
    assert (name, to, announced["type"]) == (
        "events.deliver_event",
        subscription.id,
        DEAD_LETTER_CREATED,
    )
    assert announced["data"]["id"] == letter.id and announced["data"]["reason"] == dl.MALFORMED


def test_a_recorded_send_is_announced_to_its_subscribers_from_the_same_round_trip(redis_client):
    from app.delivery.messages import MessageStore
    from app.delivery.statuses import record_sent

    wanted, _ = SubscriptionStore(redis_client, load_cipher(generate_key())).create(
        "https://a.example.com/", [MESSAGE_STATUS]
    )
    SubscriptionStore(redis_client, load_cipher(generate_key())).create(
        "https://b.example.com/", [MESSAGE_RECEIVED]
    )
    store = MessageStore(redis_client)
    store.create("m1", {"to": "573001234567", "type": "text", "text": {"body": "hi"}}, "normal")

    record_sent(store, "m1", "wamid.1")

    ((name, (to, event), _),) = queued_tasks(redis_client, celeryconfig.QUEUE_EVENTS)
    assert (name, to, event["type"]) == ("events.deliver_event", wanted.id, MESSAGE_STATUS)
    assert event["data"]["status"] == "sent" and event["data"]["message_id"] == "m1"


def test_a_broken_subscription_read_never_fails_the_send_it_rides_with(redis_client, caplog):
    from app import keys
    from app.delivery.messages import SENT, MessageStore
    from app.delivery.statuses import record_sent

    redis_client.set(keys.EVENT_SUBSCRIPTIONS, "not a hash")  # HVALS answers an error
    store = MessageStore(redis_client)
    store.create("m1", {"to": "573001234567", "type": "text", "text": {"body": "hi"}}, "normal")

    with caplog.at_level(logging.ERROR):
        record_sent(store, "m1", "wamid.1")

    assert store.get("m1").status == SENT and store.id_for_wamid("wamid.1") == "m1"
    assert "event message.status not queued: ResponseError" in caplog.text
