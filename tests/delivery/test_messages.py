from __future__ import annotations

import pytest

from app import keys
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


def deliver(store, message_id: str, wamid: str) -> None:
    store.create(message_id, PAYLOAD, "normal")
    store.mark_sending(message_id, 1)
    store.record_wamid(message_id, wamid)
    store.advance(message_id, DELIVERED)


def test_a_delivered_message_keeps_its_status_and_history_but_not_its_body(store):
    deliver(store, "m1", "wamid.1")
    record = store.get("m1")
    assert (record.status, record.wamid, record.attempts, record.to) == (
        DELIVERED,
        "wamid.1",
        1,
        "573001234567",
    )
    assert record.payload is None
    assert [h["status"] for h in record.history] == [QUEUED, SENDING, SENT, DELIVERED]
    assert all(abs(h["at"] - record.created_at) < 5 for h in record.history)
    # The history list is folded into the record, which keeps its time to live.
    assert not store.redis.exists(store.history_key("m1"))
    assert 0 < store.redis.ttl(store.key("m1")) <= store.retention


def test_statuses_after_the_final_one_are_folded_too(store):
    deliver(store, "m1", "wamid.1")
    assert store.advance("m1", READ)
    assert not store.advance("m1", SENT)  # late, ignored, and still written down
    record = store.get("m1")
    assert record.status == READ
    assert [(h["status"], h.get("ignored", False)) for h in record.history][-2:] == [
        (READ, False),
        (SENT, True),
    ]
    assert not store.redis.exists(store.history_key("m1"))


def test_keep_body_keeps_it(redis_client):
    store = MessageStore(redis_client, keep_body=True)
    deliver(store, "m1", "wamid.1")
    assert store.get("m1").payload == PAYLOAD


def test_retention_sets_how_long_records_and_their_wamid_index_live(redis_client):
    store = MessageStore(redis_client, retention=3 * 86400)
    deliver(store, "m1", "wamid.1")
    for key in (store.key("m1"), "wa:wamid:wamid.1"):
        assert 3 * 86400 - 60 < redis_client.ttl(key) <= 3 * 86400


def test_retention_and_keep_body_come_from_the_settings(redis_client, monkeypatch):
    monkeypatch.setenv("MESSAGE_RETENTION_DAYS", "7")
    monkeypatch.setenv("MESSAGE_KEEP_BODY", "true")
    store = MessageStore(redis_client)
    assert (store.retention, store.keep_body) == (7 * 86400, True)


@pytest.mark.real_redis(reason="the hash encoding and memory usage are the real server's")
def test_a_final_record_is_stored_compactly(store):
    deliver(store, "m1", "wamid.1")
    store.advance("m1", READ)
    assert store.redis.object("encoding", store.key("m1")) == "listpack"
    assert store.redis.memory_usage(store.key("m1")) < 400


def test_a_compacted_record_is_still_created_once_only(store):
    deliver(store, "m1", "wamid.1")
    assert not store.create("m1", PAYLOAD, "high")
    assert store.get("m1").status == DELIVERED
def test_the_depth_counts_messages_per_lane_and_number_until_their_send_ends(store):
    from app.delivery.messages import NewMessage

    store.create_many(
        [NewMessage(f"b{i}", PAYLOAD, "bulk", None, None, "106540352242922") for i in range(3)]
        + [NewMessage("o1", PAYLOAD, "bulk", None, None, "106540352242923")]
    )
    store.create("h1", PAYLOAD, "high")  # the configured number
    assert store.waiting("bulk", "106540352242922") == 3
    assert (store.waiting("bulk", "106540352242923"), store.waiting("high", None)) == (1, 1)
    store.mark_sending("b0", 1)
    store.expect_runs(["b0", "b1"])  # moving a due time counts nothing twice
    assert store.waiting("bulk", "106540352242922") == 3
    store.record_wamid("b0", "wamid.b0")
    store.send_ended("b1")  # dead-lettered
    store.send_ended("b1")  # twice: counted once
    store.expect_run("b1")  # a late deferral does not bring an ended send back
    assert store.waiting("bulk", "106540352242922") == 1
    store.reset_for_replay("b1")
    assert store.waiting("bulk", "106540352242922") == 2
    store.delete("b1", "b2", "o1", "h1")
    assert store.redis.hgetall(keys.SEND_WAITING) == {}
