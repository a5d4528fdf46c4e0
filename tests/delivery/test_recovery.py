"""Sends the broker lost are found by their overdue time and enqueued again, once."""

from __future__ import annotations

import time

import pytest

from app.delivery import dead_letters as dl
from app.delivery.dead_letters import DeadLetterStore
from app.delivery.messages import MessageStore
from app.delivery.sender import recover_lost_sends

PAYLOAD = {
    "messaging_product": "whatsapp",
    "to": "573001234567",
    "type": "text",
    "text": {"body": "hi"},
}
GRACE = 10.0


@pytest.fixture
def store(redis_client):
    return MessageStore(redis_client)


def recover(store, depth=0, now=None):
    queued: list[tuple[str, str]] = []
    ids = recover_lost_sends(
        store, lambda i, p: queued.append((i, p)), lambda lane: depth, GRACE, now=now
    )
    assert ids == [i for i, _ in queued]
    return queued


def test_a_send_overdue_past_the_grace_is_enqueued_again_once(store):
    store.create("m1", PAYLOAD, "high")
    assert recover(store) == []  # just accepted: its task is on its way
    later = time.time() + GRACE + 1
    assert recover(store, now=later) == [("m1", "high")]
    assert recover(store, now=later + 1) == []  # not again until another grace has passed


def test_a_deferred_send_is_not_overdue_before_it_is_due(store):
    store.create("m1", PAYLOAD, "normal")
    store.expect_run("m1", time.time() + 100)  # rate-limited or backing off for 100 s
    assert recover(store, now=time.time() + GRACE + 50) == []
    assert recover(store, now=time.time() + GRACE + 101) == [("m1", "normal")]


def test_nothing_is_enqueued_while_its_lane_has_a_backlog(store):
    store.create("m1", PAYLOAD, "bulk")
    assert recover(store, depth=5000, now=time.time() + 3600) == []


def test_sent_and_dead_lettered_messages_leave_the_index(store, redis_client):
    store.create("m1", PAYLOAD, "normal")
    store.create("m2", PAYLOAD, "normal")
    store.mark_sending("m1", 1)
    store.record_wamid("m1", "wamid.1")
    DeadLetterStore(redis_client).add(store, "m2", dl.PERMANENT_ERROR, {"code": 131026})
    assert store.overdue(time.time() + 3600) == []
    assert recover(store, now=time.time() + 3600) == []


def test_a_replayed_message_is_expected_again(store, redis_client):
    store.create("m1", PAYLOAD, "normal")
    dead_letters = DeadLetterStore(redis_client)
    dead_letters.add(store, "m1", dl.POISON)
    dead_letters.replay(store, "m1", lambda i, p: None)
    assert store.overdue(time.time() + 1) == ["m1"]
