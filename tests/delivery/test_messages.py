from __future__ import annotations

import pytest

from app.delivery.messages import (
    DELIVERED,
    FAILED,
    QUEUED,
    READ,
    SENDING,
    SENT,
    MessageStore,
)

pytestmark = pytest.mark.any_redis

PAYLOAD = {
    "messaging_product": "whatsapp",
    "to": "573001234567",
    "type": "text",
    "text": {"body": "hi"},
}


@pytest.fixture
def store(redis_client):
    return MessageStore(redis_client)


def test_create_is_once_only(store):
    assert store.create("m1", PAYLOAD, "high")
    assert not store.create("m1", {**PAYLOAD, "to": "1"}, "bulk")
    record = store.get("m1")
    assert (record.status, record.priority, record.to, record.payload) == (
        QUEUED,
        "high",
        "573001234567",
        PAYLOAD,
    )


def test_statuses_never_move_backwards(store):
    store.create("m1", PAYLOAD, "normal")
    store.mark_sending("m1", 1)
    assert store.get("m1").attempts == 1
    store.record_wamid("m1", "wamid.1")
    assert store.advance("m1", READ)
    assert not store.advance("m1", DELIVERED)  # late delivered after read
    assert not store.advance("m1", SENT)
    record = store.get("m1")
    assert record.status == READ
    assert [h["status"] for h in record.history] == [QUEUED, SENDING, SENT, READ, DELIVERED, SENT]
    assert [h.get("ignored", False) for h in record.history][-2:] == [True, True]


def test_failed_after_sent_keeps_the_error(store):
    store.create("m1", PAYLOAD, "normal")
    store.record_wamid("m1", "wamid.1")
    assert store.advance("m1", FAILED, error={"code": 131026})
    assert store.get("m1").error == {"code": 131026}


def test_wamid_index(store):
    store.create("m1", PAYLOAD, "normal")
    store.record_wamid("m1", "wamid.1")
    assert store.id_for_wamid("wamid.1") == "m1"
    assert store.get("m1").wamid == "wamid.1"
    assert store.id_for_wamid("wamid.other") is None


def test_unknown_message_and_status(store):
    assert store.get("nope") is None
    assert not store.advance("nope", SENT)
    with pytest.raises(ValueError):
        store.advance("nope", "exploded")
