"""``/v1/event-subscriptions``: the secret shown once, every refusal with its status and field,
and nothing kept from a refused request."""

from __future__ import annotations

import pytest

from app import keys
from app.api_keys import ApiKeyRegistry
from app.credentials import generate_key
from tests.web.test_messages import AUTH, make_client

HOOK = {"url": "http://127.0.0.1:9/hook", "events": ["message.received", "conversation.handoff"]}


@pytest.fixture
def client(redis_client, monkeypatch):
    monkeypatch.setenv("GATEWAY_ENCRYPTION_KEYS", generate_key())
    monkeypatch.setenv("EVENT_ALLOW_PRIVATE_URLS", "true")
    return make_client()


def test_created_with_its_secret_once_then_listed_shown_and_deleted(client, redis_client):
    created = client.post(
        "/v1/event-subscriptions", json={**HOOK, "description": "CRM"}, headers=AUTH
    )
    assert created.status_code == 201
    body = created.json
    assert body["secret"].startswith("whsec_") and body["description"] == "CRM"
    assert body["secret"] not in redis_client.hget(keys.EVENT_SUBSCRIPTIONS, body["id"])

    listed = client.get("/v1/event-subscriptions", headers=AUTH).json["subscriptions"]
    shown = client.get(f"/v1/event-subscriptions/{body['id']}", headers=AUTH).json
    assert [s["id"] for s in listed] == [body["id"]]
    assert "secret" not in listed[0] and "secret" not in shown
    assert shown["events"] == HOOK["events"]

    assert client.delete(f"/v1/event-subscriptions/{body['id']}", headers=AUTH).status_code == 204
    assert client.get(f"/v1/event-subscriptions/{body['id']}", headers=AUTH).status_code == 404
    assert client.delete(f"/v1/event-subscriptions/{body['id']}", headers=AUTH).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://127.0.0.1/", "events": ["message.received"]}, "url"),
        ({"url": "http://u:p@127.0.0.1/", "events": ["message.received"]}, "url"),
        ({"url": 12, "events": ["message.received"]}, "url"),
        ({"url": "http://127.0.0.1/"}, "events"),
        ({"url": "http://127.0.0.1/", "events": ["message.deleted"]}, "events"),
        ({**HOOK, "description": 5}, "description"),
        (["not", "an", "object"], "body"),
    ],
)
def test_a_refused_subscription_is_422_naming_its_field_and_nothing_is_kept(
    client, redis_client, body, field
):
    answer = client.post("/v1/event-subscriptions", json=body, headers=AUTH)
    assert answer.status_code == 422
    assert answer.json["error"] | {"message": None} == {
        "code": "invalid_subscription",
        "field": field,
        "message": None,
    }
    assert redis_client.hlen(keys.EVENT_SUBSCRIPTIONS) == 0


def test_a_loopback_url_is_refused_unless_allowed(redis_client, monkeypatch):
    monkeypatch.setenv("GATEWAY_ENCRYPTION_KEYS", generate_key())
    answer = make_client().post("/v1/event-subscriptions", json=HOOK, headers=AUTH)
    assert answer.status_code == 422
    assert "loopback" in answer.json["error"]["message"]
    assert redis_client.hlen(keys.EVENT_SUBSCRIPTIONS) == 0


def test_not_json_is_400(client):
    answer = client.post(
        "/v1/event-subscriptions", data=b"{", content_type="application/json", headers=AUTH
    )
    assert answer.status_code == 400 and answer.json["error"]["code"] == "invalid_json"


def test_without_encryption_keys_nothing_is_stored_in_clear(redis_client, monkeypatch):
    monkeypatch.setenv("EVENT_ALLOW_PRIVATE_URLS", "true")
    monkeypatch.delenv("GATEWAY_ENCRYPTION_KEYS", raising=False)
    monkeypatch.setattr("app.credentials._from_keyring", lambda: "")
    answer = make_client().post("/v1/event-subscriptions", json=HOOK, headers=AUTH)
    assert answer.status_code == 503
    assert answer.json["error"]["code"] == "encryption_keys_missing"
    assert redis_client.hlen(keys.EVENT_SUBSCRIPTIONS) == 0


def test_managing_subscriptions_takes_the_admin_scope(client, redis_client):
    sender = ApiKeyRegistry(redis_client).create("sender", ["send", "read"])[1]
    headers = {"Authorization": f"Bearer {sender}"}
    assert client.post("/v1/event-subscriptions", json=HOOK, headers=headers).status_code == 403
    assert client.get("/v1/event-subscriptions", headers=headers).status_code == 403
