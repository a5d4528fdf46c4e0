"""Status webhooks applied to outbound messages, including those that overtake Meta's answer."""

from __future__ import annotations

import pytest

from app import keys
from app.delivery import dead_letters as dl
from app.delivery.dead_letters import DeadLetterStore
from app.delivery.messages import DEAD_LETTERED, DELIVERED, READ, SENDING, SENT, MessageStore
from app.delivery.statuses import apply_early_statuses, apply_status, record_sent
from app.whatsapp.webhook import Metadata, Status

pytestmark = pytest.mark.any_redis

PAYLOAD = {
    "messaging_product": "whatsapp",
    "to": "573001234567",
    "type": "text",
    "text": {"body": "hi"},
}


def status(wamid: str, name: str, errors: list | None = None) -> Status:
    return Status(
        id=wamid,
        status=name,
        timestamp=0,
        recipient_id="573001234567",
        metadata=Metadata("106540352242922", "15550783881"),
        errors=errors or [],
        raw={},
    )


@pytest.fixture
def store(redis_client):
    store = MessageStore(redis_client)
    store.create("m1", PAYLOAD, "normal")
    store.mark_sending("m1", 1)
    return store


def test_statuses_of_a_recorded_message_apply_at_once(store):
    record_sent(store, "m1", "wamid.1")
    assert apply_status(store, status("wamid.1", "delivered"))
    assert not apply_status(store, status("wamid.1", "sent"))  # older: changes nothing
    assert store.get("m1").status == DELIVERED


def test_a_status_that_overtook_metas_answer_is_applied_when_the_send_records_it(store):
    # Meta's read arrives while the send worker is still waiting for Meta's answer.
    assert not apply_status(store, status("wamid.1", "read"))
    assert store.get("m1").status == SENDING
    assert record_sent(store, "m1", "wamid.1") == 1
    record = store.get("m1")
    assert record.status == READ
    assert [h["status"] for h in record.history][-2:] == [SENT, READ]
    assert record.history[-1]["arrived_before_wamid"] is True
    assert not store.redis.exists(keys.EARLY_STATUSES.format(wamid="wamid.1"))
    # The late sent and delivered find the message now, and do not move it back.
    assert not apply_status(store, status("wamid.1", "sent"))
    assert not apply_status(store, status("wamid.1", "delivered"))
    assert store.get("m1").status == READ


def test_a_failed_status_before_the_answer_dead_letters_once_recorded(store):
    error = {"code": 131026, "title": "Message undeliverable", "message": "undeliverable"}
    apply_status(store, status("wamid.1", "failed", [error]))
    record_sent(store, "m1", "wamid.1")
    assert store.get("m1").status == DEAD_LETTERED
    assert DeadLetterStore(store.redis).get("m1").reason == dl.PERMANENT_ERROR


def test_a_run_that_died_after_recording_leaves_them_for_the_next_run(store):
    apply_status(store, status("wamid.1", "delivered"))
    store.record_wamid("m1", "wamid.1")  # and the process died here
    assert store.get("m1").status == SENT
    assert apply_early_statuses(store, "m1", "wamid.1") == 1
    assert store.get("m1").status == DELIVERED
    assert apply_early_statuses(store, "m1", "wamid.1") == 0


def test_statuses_of_a_wamid_never_recorded_are_bounded_and_expire(store):
    for _ in range(20):
        apply_status(store, status("wamid.other-system", "read"))
    key = keys.EARLY_STATUSES.format(wamid="wamid.other-system")
    assert store.redis.llen(key) == keys.EARLY_STATUSES_KEPT
    assert 0 < store.redis.ttl(key) <= keys.EARLY_STATUSES_TTL


def test_statuses_of_other_kinds_are_not_held(store):
    assert not apply_status(store, status("wamid.1", "deleted"))
    assert not store.redis.exists(keys.EARLY_STATUSES.format(wamid="wamid.1"))


def test_read_is_the_last_status_so_its_wamid_index_is_kept_a_day_only(store):
    record_sent(store, "m1", "wamid.1")
    assert apply_status(store, status("wamid.1", "delivered"))
    index = keys.WAMID_INDEX.format(wamid="wamid.1")
    assert store.redis.ttl(index) > keys.WAMID_INDEX_AFTER_READ_TTL
    assert apply_status(store, status("wamid.1", "read"))
    assert 0 < store.redis.ttl(index) <= keys.WAMID_INDEX_AFTER_READ_TTL
    # A late one still finds the message within the day, and is kept as ignored.
    assert not apply_status(store, status("wamid.1", "delivered"))
    assert store.get("m1").history[-1] == {
        **store.get("m1").history[-1],
        "status": DELIVERED,
        "ignored": True,
    }


def test_a_failed_status_after_delivery_keeps_metas_error_without_a_dead_letter(store):
    record_sent(store, "m1", "wamid.1")
    assert apply_status(store, status("wamid.1", "delivered"))  # the body is dropped
    error = {"code": 131000, "title": "Something went wrong", "message": "Something went wrong"}
    assert not apply_status(store, status("wamid.1", "failed", [error]))
    record = store.get("m1")
    assert record.status == "failed" and record.error["code"] == 131000
    assert DeadLetterStore(store.redis).get("m1") is None
