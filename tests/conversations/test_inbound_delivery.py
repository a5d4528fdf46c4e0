"""What inbound webhooks do to outbound delivery: statuses, dead letters and the window."""

from __future__ import annotations

import copy
import time

from app.conversations.inbound import handle_webhook
from app.delivery import dead_letters as dl
from app.delivery.dead_letters import DeadLetterStore
from app.delivery.messages import DEAD_LETTERED, READ, MessageStore
from app.delivery.statuses import record_sent
from app.delivery.window import CustomerWindows
from tests.stack import TEST_CREDENTIALS, text_webhook

NUMBER = TEST_CREDENTIALS["WHATSAPP_PHONE_NUMBER_ID"]
PAYLOAD = {
    "messaging_product": "whatsapp",
    "to": "573001234567",
    "type": "text",
    "text": {"body": "x"},
}


def status_webhook(wamid: str, status: str, errors: list | None = None) -> dict:
    webhook = text_webhook("573001234567", "ignored")
    value = webhook["entry"][0]["changes"][0]["value"]
    del value["messages"], value["contacts"]
    item = {
        "id": wamid,
        "status": status,
        "timestamp": str(int(time.time())),
        "recipient_id": "573001234567",
    }
    if errors:
        item["errors"] = errors
    value["statuses"] = [item]
    return webhook


def handle(redis_client, payload):
    return handle_webhook(
        payload,
        redis_client=redis_client,
        enqueue_turn=lambda turn: None,
    )


def sent(redis_client) -> MessageStore:
    store = MessageStore(redis_client)
    store.create("m1", PAYLOAD, "high")
    store.mark_sending("m1", 1)
    store.record_wamid("m1", "wamid.out1")
    return store


def test_statuses_out_of_order_never_move_a_message_back(redis_client):
    store = sent(redis_client)
    for status in ("read", "delivered", "sent"):
        handle(redis_client, status_webhook("wamid.out1", status))
    record = store.get("m1")
    assert record.status == READ
    assert [h["status"] for h in record.history if h.get("ignored")] == ["delivered", "sent"]


def test_a_status_that_arrives_before_the_wamid_is_recorded_is_not_lost(redis_client):
    store = MessageStore(redis_client)
    store.create("m1", PAYLOAD, "high")
    store.mark_sending("m1", 1)
    # Meta's webhooks overtook its answer to the send: nothing knows wamid.out1 yet.
    for name in ("read", "delivered"):
        assert handle(redis_client, status_webhook("wamid.out1", name)).statuses_ignored == 1
    record_sent(store, "m1", "wamid.out1")
    assert store.get("m1").status == READ


def test_failed_after_sent_records_metas_error_and_dead_letters(redis_client):
    store = sent(redis_client)
    error = {
        "code": 131047,
        "title": "Re-engagement message",
        "message": "Re-engagement message",
        "error_data": {"details": "Message failed to send because more than 24 hours have passed"},
    }
    result = handle(redis_client, status_webhook("wamid.out1", "failed", [error]))
    assert result.statuses_applied == 1
    record = store.get("m1")
    assert record.status == DEAD_LETTERED and record.error["code"] == 131047
    letter = DeadLetterStore(redis_client).get("m1")
    assert letter.reason == dl.WINDOW_CLOSED
    assert letter.error["details"].startswith("Message failed to send")
    # Meta retries the webhook: nothing changes.
    assert (
        handle(redis_client, status_webhook("wamid.out1", "failed", [error])).statuses_ignored == 1
    )
    assert len(DeadLetterStore(redis_client)) == 1


def test_a_customer_message_opens_their_window_with_the_number(redis_client):
    windows = CustomerWindows(redis_client)
    assert not windows.is_open(NUMBER, "573001112233")
    handle(redis_client, text_webhook("573001112233", "Hola"))
    assert windows.is_open(NUMBER, "573001112233")
    assert windows.last_inbound(NUMBER, "573001112233") <= time.time()


def test_a_redelivered_old_message_does_not_move_the_window_back(redis_client):
    windows = CustomerWindows(redis_client)
    handle(redis_client, text_webhook("573001112233", "Hola"))
    at = windows.last_inbound(NUMBER, "573001112233")
    old = text_webhook("573001112233", "earlier")
    message = old["entry"][0]["changes"][0]["value"]["messages"][0]
    message["timestamp"] = str(int(time.time()) - 3600)
    handle(redis_client, copy.deepcopy(old))
    assert windows.last_inbound(NUMBER, "573001112233") == at
