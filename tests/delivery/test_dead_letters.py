from __future__ import annotations

import pytest

from app import keys
from app.delivery import dead_letters as dl
from app.delivery.dead_letters import DeadLetterStore, dead_letter_failed_status
from app.delivery.messages import DEAD_LETTERED, FAILED, QUEUED, MessageStore

pytestmark = pytest.mark.any_redis

PAYLOAD = {
    "messaging_product": "whatsapp",
    "to": "573001234567",
    "type": "text",
    "text": {"body": "hi"},
}
ERROR = {"code": 131026, "title": "Message undeliverable", "details": "not on WhatsApp"}


@pytest.fixture
def store(redis_client):
    return MessageStore(redis_client)


@pytest.fixture
def dlq(redis_client):
    return DeadLetterStore(redis_client)


def sent_message(store, message_id="m1", priority="normal", key=None):
    store.create(message_id, PAYLOAD, priority, idempotency_key=key)
    store.mark_sending(message_id, 1)
    return message_id


def test_add_keeps_everything_needed_to_understand_and_replay(store, dlq):
    sent_message(store, key="order-7")
    store.count_failure("m1")
    letter = dlq.add(store, "m1", dl.PERMANENT_ERROR, ERROR)
    assert "m1" in dlq and len(dlq) == 1
    stored = dlq.get("m1")
    assert stored == letter
    assert (stored.reason, stored.code, stored.message, stored.attempts) == (
        dl.PERMANENT_ERROR,
        131026,
        PAYLOAD,
        1,
    )
    assert stored.idempotency_key == "order-7"
    assert stored.first_failed_at <= stored.last_failed_at
    record = store.get("m1")
    assert record.status == DEAD_LETTERED and record.dead_letter_reason == dl.PERMANENT_ERROR
    assert record.error == ERROR
    assert [h["status"] for h in record.history][-2:] == [FAILED, DEAD_LETTERED]


def test_list_filters_by_reason_and_code_most_recent_first(store, dlq):
    for i, (reason, code) in enumerate(
        [(dl.PERMANENT_ERROR, 131026), (dl.WINDOW_CLOSED, 131047), (dl.PERMANENT_ERROR, 100)]
    ):
        sent_message(store, f"m{i}")
        dlq.add(store, f"m{i}", reason, {"code": code})
    assert [d.id for d in dlq.list()] == ["m2", "m1", "m0"]
    assert [d.id for d in dlq.list(reason=dl.PERMANENT_ERROR)] == ["m2", "m0"]
    assert [d.id for d in dlq.list(code=131047)] == ["m1"]
    assert [d.id for d in dlq.list(limit=1, offset=1)] == ["m1"]
    assert dlq.list(reason=dl.POISON) == []


def test_unknown_reason_and_missing_record(store, dlq):
    with pytest.raises(ValueError):
        dlq.add(store, "m1", "bored")
    assert dlq.add(store, "nope", dl.POISON) is None
    assert len(dlq) == 0


def test_replay_keeps_id_and_idempotency_and_resets_attempts(store, dlq, redis_client):
    sent_message(store, key="order-7")
    store.record_wamid("m1", "wamid.first")
    dlq.add(store, "m1", dl.DELIVERY_FAILED, ERROR)
    queued: list[tuple[str, str]] = []
    assert dlq.replay(store, "m1", lambda i, p: queued.append((i, p)))
    assert queued == [("m1", "normal")]
    assert "m1" not in dlq
    record = store.get("m1")
    assert (record.status, record.attempts, record.failures, record.wamid, record.error) == (
        QUEUED,
        0,
        0,
        None,
        None,
    )
    assert record.idempotency_key == "order-7"
    assert record.history[-1]["replayed"] is True
    # The failed attempt's late statuses no longer reach the message.
    assert store.id_for_wamid("wamid.first") is None
    assert not dlq.replay(store, "m1", lambda i, p: None)


def test_replay_recreates_an_expired_record(store, dlq, redis_client):
    sent_message(store, priority="bulk")
    dlq.add(store, "m1", dl.RETRIES_EXHAUSTED, ERROR)
    redis_client.delete(store.key("m1"), store.history_key("m1"))
    dlq.replay(store, "m1", lambda i, p: None)
    record = store.get("m1")
    assert (record.status, record.payload, record.priority) == (QUEUED, PAYLOAD, "bulk")


def test_a_replay_sends_from_the_number_the_message_was_sent_from(store, dlq, redis_client):
    store.create("m1", PAYLOAD, "normal", phone_number_id="106540352242999")
    dlq.add(store, "m1", dl.CONFIGURATION_ERROR, ERROR)
    assert dlq.get("m1").phone_number_id == "106540352242999"
    redis_client.delete(store.key("m1"), store.history_key("m1"))  # expired meanwhile
    dlq.replay(store, "m1", lambda i, p: None)
    assert store.get("m1").phone_number_id == "106540352242999"


def test_a_replay_the_broker_refuses_leaves_the_dead_letter_in_place(store, dlq):
    sent_message(store)
    dlq.add(store, "m1", dl.PERMANENT_ERROR, ERROR)

    def broker_down(message_id, priority):
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        dlq.replay(store, "m1", broker_down)
    assert "m1" in dlq
    assert store.get("m1").status == DEAD_LETTERED


def test_replay_matching_and_purge(store, dlq):
    for i in range(5):
        sent_message(store, f"m{i}")
        dlq.add(store, f"m{i}", dl.WINDOW_CLOSED if i % 2 else dl.THROTTLED, {"code": i})
    queued = []
    replayed = dlq.replay_matching(store, lambda i, p: queued.append(i), reason=dl.WINDOW_CLOSED)
    assert sorted(replayed) == ["m1", "m3"] == sorted(queued)
    assert dlq.purge(code=4) == 1
    assert sorted(dlq.ids()) == ["m0", "m2"]
    assert dlq.remove("m0") and not dlq.remove("m0")
    assert dlq.purge() == 1 and len(dlq) == 0
    # Purging drops the entry; the message keeps its status and history.
    assert store.get("m0").status == DEAD_LETTERED


def test_dead_letters_have_no_expiry(store, dlq, redis_client):
    sent_message(store)
    dlq.add(store, "m1", dl.POISON)
    assert redis_client.ttl(keys.DEAD_LETTER.format(message_id="m1")) == -1
    assert redis_client.ttl(keys.DEAD_LETTERS) == -1


@pytest.mark.parametrize(
    ("code", "reason"),
    [(131047, dl.WINDOW_CLOSED), (131026, dl.PERMANENT_ERROR), (131000, dl.DELIVERY_FAILED)],
)
def test_failed_status_webhook_records_metas_error_and_dead_letters(store, dlq, code, reason):
    sent_message(store)
    store.record_wamid("m1", "wamid.1")
    meta_error = {
        "code": code,
        "title": "Re-engagement message",
        "message": "Re-engagement message",
        "error_data": {"details": "Message failed to send because more than 24 hours"},
    }
    assert dead_letter_failed_status(store, dlq, "m1", [meta_error])
    letter = dlq.get("m1")
    assert letter.reason == reason and letter.code == code
    assert letter.error["details"].startswith("Message failed")
    assert letter.wamid == "wamid.1"
    # Meta's retry of the same webhook changes nothing.
    assert not dead_letter_failed_status(store, dlq, "m1", [meta_error])
