"""``/v1/conversations/<id>`` by phone or by business-scoped user id: one conversation either way."""

from __future__ import annotations

import pytest

from app.config import get_settings
from app.conversations.context import ConversationStore
from app.conversations.customers import CustomerBook, Identity
from app.web import create_app
from tests.conversations.helpers import exchange
from tests.stack import TEST_CREDENTIALS

NUMBER = TEST_CREDENTIALS["WHATSAPP_PHONE_NUMBER_ID"]
PHONE = "573001234567"
USER_ID = "CO.13491208655302741918"
PARENT_USER_ID = "CO.ENT.11815799212886844830"
KEY = "gw-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def client(redis_client, monkeypatch):
    monkeypatch.setenv("GATEWAY_API_KEYS", KEY)
    return create_app({"SETTINGS": get_settings(), "TESTING": True}).test_client()


def test_a_customer_with_no_phone_is_found_by_bsuid(client, redis_client):
    key = CustomerBook(redis_client).learn(NUMBER, Identity(user_id=USER_ID, username="ana.co"))
    ConversationStore(redis_client).record(NUMBER, key, exchange("wamid.1", "Hola"), text="Hola")
    body = client.get(f"/v1/conversations/{USER_ID}", headers=AUTH).json
    assert body["wa_id"] is None
    assert body["customer"] == {
        "key": USER_ID,
        "wa_id": None,
        "user_id": USER_ID,
        "parent_user_id": None,
        "username": "ana.co",
    }
    assert [e["text"] for e in body["context"]["exchanges"]] == ["Hola"]


def test_phone_bsuid_and_parent_bsuid_find_the_one_conversation(client, redis_client):
    # Stored under the phone before the customer wrote with a BSUID.
    ConversationStore(redis_client).record(NUMBER, PHONE, exchange("wamid.1", "Hola"), text="Hola")
    CustomerBook(redis_client).learn(NUMBER, Identity(PHONE, USER_ID, PARENT_USER_ID))
    bodies = [
        client.get(f"/v1/conversations/{customer_id}", headers=AUTH).json
        for customer_id in (PHONE, USER_ID, PARENT_USER_ID)
    ]
    assert all(body["customer"] == bodies[0]["customer"] for body in bodies)
    assert all(body["context"]["exchanges"] == bodies[0]["context"]["exchanges"] for body in bodies)
    assert bodies[0]["wa_id"] == PHONE and bodies[0]["customer"]["key"] == PHONE


def test_handoff_by_bsuid_is_the_customers(client, redis_client):
    CustomerBook(redis_client).learn(NUMBER, Identity(PHONE, USER_ID))
    started = client.post(f"/v1/conversations/{USER_ID}/handoff", headers=AUTH)
    assert started.status_code == 201 and started.json["customer"]["key"] == USER_ID
    assert client.post(f"/v1/conversations/{PHONE}/handoff", headers=AUTH).status_code == 200
    assert client.delete(f"/v1/conversations/{PHONE}/handoff", headers=AUTH).status_code == 200
    assert client.delete(f"/v1/conversations/{USER_ID}/handoff", headers=AUTH).status_code == 404


@pytest.mark.parametrize("bad", ["co.123", "CO.", "1234", "+573001234567", "CO.12.34", "CO.1_2"])
def test_an_id_that_is_neither_a_phone_nor_a_bsuid_is_400(client, bad):
    response = client.get(f"/v1/conversations/{bad}", headers=AUTH)
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_wa_id"
