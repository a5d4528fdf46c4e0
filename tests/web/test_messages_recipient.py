"""The send API addressing a customer by ``to`` (phone), ``recipient`` (business-scoped user id)
or both: validation, the 24-hour window, idempotency and the dead-letter store alike for each."""

from __future__ import annotations

import time

import pytest

from app.conversations.customers import CustomerBook, Identity
from app.delivery import dead_letters as dl
from app.delivery.dead_letters import DeadLetterStore
from app.delivery.messages import MessageStore
from app.delivery.window import CustomerWindows
from tests.web.test_messages import AUTH, CUSTOMER, NUMBER, make_client, post, task_ids

USER_ID = "CO.13491208655302741918"
PARENT_USER_ID = "CO.ENT.11815799212886844830"
BY_BSUID = {"recipient": USER_ID, "type": "text", "text": {"body": "Your order has shipped"}}
TEMPLATE_BY_BSUID = {
    "recipient": USER_ID,
    "type": "template",
    "template": {"name": "order_update", "language": {"code": "es"}},
}


@pytest.fixture
def client(redis_client):
    return make_client()


@pytest.fixture
def bsuid_customer(redis_client):
    """A customer with phone and BSUID who wrote a minute ago (keyed by BSUID in the book)."""
    key = CustomerBook(redis_client).learn(NUMBER, Identity(CUSTOMER, USER_ID, PARENT_USER_ID))
    CustomerWindows(redis_client).record_inbound(NUMBER, key, time.time() - 60)
    return key


def test_a_message_by_recipient_is_accepted_and_sent_as_given(client, redis_client, bsuid_customer):
    response = post(client, BY_BSUID)
    assert response.status_code == 202
    record = MessageStore(redis_client).get(response.json["id"])
    assert record.payload["recipient"] == USER_ID and "to" not in record.payload
    assert (record.to, record.recipient) == ("", USER_ID)
    assert task_ids(redis_client, "send.normal") == [record.id]
    shown = client.get(f"/v1/messages/{record.id}", headers=AUTH).json
    assert shown["recipient"] == USER_ID


def test_the_record_keeps_the_customer_key_the_sends_use(client, redis_client, bsuid_customer):
    # Looked up once at acceptance, not again on every send attempt.
    store = MessageStore(redis_client)
    by_phone = {"to": CUSTOMER, "type": "text", "text": {"body": "Your order has shipped"}}
    for body in (by_phone, BY_BSUID):
        response = post(client, body)
        assert response.status_code == 202, response.json
        assert store.get(response.json["id"]).customer == bsuid_customer


def test_the_window_is_the_customers_whichever_id_names_them(client, bsuid_customer):
    for address in ({"to": CUSTOMER}, {"recipient": USER_ID}, {"recipient": PARENT_USER_ID}):
        body = {**address, "type": "text", "text": {"body": "hi"}}
        assert post(client, body).status_code == 202, address


def test_a_closed_window_is_refused_naming_the_address_used(client):
    response = post(client, BY_BSUID)
    assert response.status_code == 422
    assert response.json["error"] == {
        "code": "window_closed",
        "field": "recipient",
        "message": "the customer has not written in 24 hours: only a template message can be sent",
    }
    assert post(client, TEMPLATE_BY_BSUID).status_code == 202


def test_a_closed_window_with_a_fallback_sends_the_template_by_recipient(redis_client):
    client = make_client(WINDOW_FALLBACK_TEMPLATE="reengage:es")
    response = post(client, BY_BSUID)
    record = MessageStore(redis_client).get(response.json["id"])
    assert record.payload["type"] == "template" and record.payload["recipient"] == USER_ID


def test_given_both_to_wins_for_the_window_and_both_go_to_meta(client, redis_client):
    # Only the phone's window is open; the BSUID here is another customer's, unknown to the book.
    CustomerWindows(redis_client).record_inbound(NUMBER, CUSTOMER, time.time() - 60)
    both = {"to": CUSTOMER, "recipient": "CO.99999999999999999999", "type": "text"}
    response = post(client, {**both, "text": {"body": "hi"}})
    assert response.status_code == 202
    payload = MessageStore(redis_client).get(response.json["id"]).payload
    assert (payload["to"], payload["recipient"]) == (CUSTOMER, "CO.99999999999999999999")


def test_a_leading_plus_on_to_is_dropped(client, redis_client, bsuid_customer):
    response = post(client, {"to": "+" + CUSTOMER, "type": "text", "text": {"body": "hi"}})
    assert response.status_code == 202
    assert MessageStore(redis_client).get(response.json["id"]).payload["to"] == CUSTOMER


@pytest.mark.parametrize(
    ("address", "field"),
    [
        ({}, "to"),
        ({"recipient": "13491208655302741918"}, "recipient"),
        ({"recipient": "co.13491208655302741918"}, "recipient"),
        ({"recipient": "CO." + "1" * 129}, "recipient"),
        ({"recipient": 5}, "recipient"),
        ({"to": "++573001234567"}, "to"),
        ({"to": "57 300 123 4567"}, "to"),
        ({"to": CUSTOMER, "recipient": "nope"}, "recipient"),
    ],
)
def test_an_invalid_address_is_422_naming_the_field(client, redis_client, address, field):
    template = {k: v for k, v in TEMPLATE_BY_BSUID.items() if k != "recipient"}
    response = post(client, {**template, **address})
    assert response.status_code == 422, address
    assert response.json["error"]["field"] == field
    assert task_ids(redis_client, "send.normal") == []


def test_a_batch_takes_either_address(client, redis_client, bsuid_customer):
    by_phone = {"to": CUSTOMER, "type": "text", "text": {"body": "hi"}}
    body = {"messages": [BY_BSUID, by_phone]}
    response = post(client, body, path="/v1/messages/batch")
    assert response.status_code == 202
    ids = [m["id"] for m in response.json["messages"]]
    records = [MessageStore(redis_client).get(i) for i in ids]
    assert [(r.to, r.recipient) for r in records] == [("", USER_ID), (CUSTOMER, None)]


def test_idempotency_works_the_same_by_recipient(client, redis_client, bsuid_customer):
    headers = {"Idempotency-Key": "bsuid-order-1"}
    first = post(client, BY_BSUID, headers)
    again = post(client, BY_BSUID, headers)
    assert again.json["id"] == first.json["id"] and again.headers["Idempotent-Replayed"] == "true"
    other = {**BY_BSUID, "recipient": PARENT_USER_ID}
    assert post(client, other, headers).status_code == 409
    assert task_ids(redis_client, "send.normal") == [first.json["id"]]


def test_a_dead_letter_by_recipient_is_listed_and_replayed(client, redis_client):
    message_id = post(client, TEMPLATE_BY_BSUID).json["id"]
    store = MessageStore(redis_client)
    store.mark_sending(message_id, 1)
    DeadLetterStore(redis_client).add(store, message_id, dl.PERMANENT_ERROR, {"code": 131026})
    redis_client.delete("send.normal")
    (listed,) = client.get("/v1/dead-letters", headers=AUTH).json["dead_letters"]
    assert (listed["id"], listed["to"], listed["recipient"]) == (message_id, None, USER_ID)
    shown = client.get(f"/v1/dead-letters/{message_id}", headers=AUTH).json
    assert shown["message"]["recipient"] == USER_ID
    assert client.post(f"/v1/dead-letters/{message_id}/replay", headers=AUTH).status_code == 202
    assert task_ids(redis_client, "send.normal") == [message_id]
    assert store.get(message_id).payload["recipient"] == USER_ID
