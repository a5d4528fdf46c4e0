"""Customers known by business-scoped user id through the inbound flow, in-process: a customer with
no phone is answered by ``recipient``, and a customer whose ids change keeps one conversation."""

from __future__ import annotations

import pytest

from app.conversations.context import ConversationStore
from app.conversations.inbound import handle_webhook
from app.delivery.messages import READ, MessageStore
from app.delivery.window import CustomerWindows
from tests.conversations.identity_payloads import (
    NUMBER,
    USER_ID,
    number_changed,
    status_of,
    text_from,
    user_id_changed,
)
from tests.conversations.test_inbound import Flow
from tests.stack import SimulatorThread, text_webhook

PHONE = "573001234567"


@pytest.fixture
def simulator():
    sim = SimulatorThread()
    yield sim
    sim.close()


@pytest.fixture
def flow(redis_client, simulator):
    return Flow(redis_client, simulator.client())


def payload_of(flow: Flow, message_id: str) -> dict:
    return MessageStore(flow.redis).get(message_id).payload


def exchanges(flow: Flow, customer: str) -> list[tuple[str, str]]:
    conversation = ConversationStore(flow.redis).get(NUMBER, customer)
    return [(e.role, e.text) for e in conversation.exchanges]


def test_a_customer_with_only_a_username_is_answered_by_bsuid_in_context(flow, simulator):
    (hello,) = flow.deliver(text_from("Hola", username="ana.co"))
    (price,) = flow.deliver(text_from("¿Cuánto cuesta la camiseta roja?", username="ana.co"))
    (shipping,) = flow.deliver(text_from("¿Y cuánto tarda el envío de esa?", username="ana.co"))
    reply = payload_of(flow, hello)
    assert reply["recipient"] == USER_ID and "to" not in reply
    assert "Hola Ana" in reply["text"]["body"]
    assert flow.reply_text(shipping) == "La camiseta roja llega en 1 a 2 días hábiles."
    assert flow.reply_text(price) == "La camiseta roja cuesta 25 USD."
    assert len(exchanges(flow, USER_ID)) == 6
    assert CustomerWindows(flow.redis).is_open(NUMBER, USER_ID)
    assert len(simulator.state.read_receipts) == 3


def test_a_phone_customer_who_later_writes_with_a_bsuid_keeps_one_conversation(flow):
    flow.deliver(text_webhook(PHONE, "Hola"))
    (with_both,) = flow.deliver(text_from("¿Cuánto cuesta la camiseta roja?", wa_id=PHONE))
    (bsuid_only,) = flow.deliver(text_from("¿Y cuánto tarda el envío de esa?"))
    assert payload_of(flow, with_both)["to"] == PHONE
    assert payload_of(flow, bsuid_only)["recipient"] == USER_ID
    assert flow.reply_text(bsuid_only) == "La camiseta roja llega en 1 a 2 días hábiles."
    assert sorted(role for role, _ in exchanges(flow, PHONE)) == ["business"] * 3 + ["customer"] * 3
    assert ConversationStore(flow.redis).get(NUMBER, USER_ID) is None


def test_a_customer_who_changes_number_keeps_one_conversation(flow):
    new_number = "573009876543"
    flow.deliver(text_webhook(PHONE, "¿Cuánto cuesta la camiseta roja?"))
    flow.deliver(number_changed(PHONE, new_number))
    (shipping,) = flow.deliver(text_webhook(new_number, "¿Y cuánto tarda el envío de esa?"))
    assert payload_of(flow, shipping)["to"] == new_number
    assert flow.reply_text(shipping) == "La camiseta roja llega en 1 a 2 días hábiles."
    roles = sorted(role for role, _ in exchanges(flow, PHONE))
    assert roles == ["business"] * 2 + ["customer"] * 3  # the system notice is one
    assert ConversationStore(flow.redis).get(NUMBER, new_number) is None


def test_a_customer_whose_bsuid_changes_keeps_one_conversation(flow):
    new_user_id = "CO.55555555555555555555"
    flow.deliver(text_from("¿Cuánto cuesta la camiseta roja?"))
    flow.deliver(user_id_changed(USER_ID, new_user_id))
    (shipping,) = flow.deliver(text_from("¿Y cuánto tarda el envío de esa?", user_id=new_user_id))
    assert payload_of(flow, shipping)["recipient"] == new_user_id
    assert flow.reply_text(shipping) == "La camiseta roja llega en 1 a 2 días hábiles."
    assert len(exchanges(flow, USER_ID)) == 5


def test_a_status_naming_only_the_bsuid_updates_the_message(redis_client):
    store = MessageStore(redis_client)
    payload = {"recipient": USER_ID, "type": "text", "text": {"body": "hola"}}
    store.create("m1", payload, "normal")
    store.record_wamid("m1", "wamid.OUT1")
    result = handle_webhook(
        status_of("wamid.OUT1", "read"), redis_client=redis_client, enqueue_turn=list().append
    )
    assert result.statuses_applied == 1
    assert store.get("m1").status == READ
    assert store.get("m1").to_dict()["recipient"] == USER_ID
