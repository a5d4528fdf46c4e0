"""Scoped API keys on the ``/v1`` API: each route is open to the keys holding its scope, and a key
limited to some sending numbers acts for those numbers only."""

from __future__ import annotations

import json
import time

import pytest

from app import keys
from app.api_keys import ADMIN, SCOPES, ApiKeyRegistry, digest
from app.conversations.handoff import HandoffStore
from app.delivery.messages import MessageStore
from app.delivery.window import CustomerWindows
from app.web import auth
from tests.stack import SECOND_NUMBER
from tests.web.test_messages import AUTH, CUSTOMER, NUMBER, TEMPLATE, TEXT, make_client

ROUTES = [
    ("post", "/v1/messages", "send"),
    ("post", "/v1/messages/batch", "send"),
    ("get", "/v1/messages/abc", "read"),
    ("get", f"/v1/conversations/{CUSTOMER}", "read"),
    ("post", f"/v1/conversations/{CUSTOMER}/handoff", "send"),
    ("delete", f"/v1/conversations/{CUSTOMER}/handoff", "send"),
    ("get", "/v1/alerts", "read"),
    ("get", "/v1/conversations", "read"),
    ("post", f"/v1/conversations/{CUSTOMER}/messages", "send"),
    ("post", "/v1/event-subscriptions", "admin"),
    ("get", "/v1/event-subscriptions", "admin"),
    ("get", "/v1/event-subscriptions/sub_x", "admin"),
    ("delete", "/v1/event-subscriptions/sub_x", "admin"),
    ("get", "/v1/dead-letters", "dead_letters"),
    ("get", "/v1/dead-letters/abc", "dead_letters"),
    ("post", "/v1/dead-letters/abc/replay", "dead_letters"),
    ("post", "/v1/dead-letters/replay", "dead_letters"),
    ("delete", "/v1/dead-letters/abc", "dead_letters"),
    ("get", "/v1/templates", "read"),
    ("get", f"/v1/customers/{CUSTOMER}", "read"),
    ("post", f"/v1/customers/{CUSTOMER}/opt-out", "send"),
    ("post", f"/v1/customers/{CUSTOMER}/opt-in", "send"),
    ("post", "/v1/campaigns", "send"),
    ("get", "/v1/campaigns/abc", "read"),
    ("post", "/v1/campaigns/abc/pause", "send"),
    ("post", "/v1/campaigns/abc/resume", "send"),
    ("post", "/v1/campaigns/abc/cancel", "send"),
    ("get", "/v1/analytics/pricing", "read"),
]
"""Every /v1 operation, a path that reaches it, and the scope it needs."""

BODIES = {
    "/v1/messages": {"to": "1"},
    "/v1/messages/batch": {"messages": [{"to": "1"}]},
    "/v1/dead-letters/replay": {"reason": "permanent_error"},
    "/v1/campaigns": {"template": {"name": "unknown", "language": "es"}, "audience": []},
}
"""Bodies that get past authentication without queueing anything."""


@pytest.fixture
def client(redis_client):
    return make_client()


def key_with(redis_client, *scopes: str, numbers: tuple[str, ...] = ()) -> dict[str, str]:
    """The Authorization header of a new stored key holding ``scopes``."""
    _, secret = ApiKeyRegistry(redis_client).create("test", scopes, numbers)
    return {"Authorization": f"Bearer {secret}"}


def call(client, method: str, path: str, headers: dict[str, str]):
    body = BODIES.get(path)
    data = json.dumps(body) if body is not None else None
    return getattr(client, method)(path, headers=headers, data=data)


def test_the_table_is_every_v1_route_with_the_scope_it_declares(client):
    app = client.application
    adapter = app.url_map.bind("localhost")
    declared = {}
    for method, path, _ in ROUTES:
        endpoint, _ = adapter.match(path, method=method.upper())
        declared[(method, path)] = getattr(app.view_functions[endpoint], auth.SCOPE_ATTRIBUTE)
    assert declared == {(method, path): scope for method, path, scope in ROUTES}
    operations = {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/v1/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert len(operations) == len(ROUTES)


@pytest.mark.parametrize("held", SCOPES)
@pytest.mark.parametrize("method, path, needed", ROUTES)
def test_each_scope_opens_its_routes_and_no_other(client, redis_client, method, path, needed, held):
    headers = key_with(redis_client, held)
    response = call(client, method, path, headers)
    if held in (needed, ADMIN):
        assert response.status_code not in (401, 403), response.get_json()
    else:
        assert response.status_code == 403
        assert response.json["error"] == {
            "code": "insufficient_scope",
            "message": f"this API key lacks the scope {needed}",
        }
        assert headers["Authorization"].split()[1] not in response.get_data(as_text=True)


def test_a_refused_send_queues_nothing(client, redis_client):
    CustomerWindows(redis_client).record_inbound(NUMBER, CUSTOMER, time.time() - 60)
    response = client.post("/v1/messages", json=TEXT, headers=key_with(redis_client, "read"))
    assert response.status_code == 403
    assert not redis_client.keys("wa:msg:*")
    allowed = client.post("/v1/messages", json=TEXT, headers=key_with(redis_client, "send"))
    assert allowed.status_code == 202


@pytest.mark.parametrize("method, path, needed", ROUTES)
def test_environment_keys_keep_full_access(client, method, path, needed):
    assert call(client, method, path, AUTH).status_code not in (401, 403)


def test_a_key_stored_before_scopes_keeps_full_access(client, redis_client):
    secret = "wag_legacy-key-0123456789abcdef"
    legacy_id = digest(secret)[:12]
    # The shape ``apikeys create`` wrote before keys had scopes.
    entry = {"id": legacy_id, "label": "old", "source": "redis", "created_at": 1.0}
    entry.update(revoked=False, digest=digest(secret))
    redis_client.hset(keys.API_KEYS, legacy_id, json.dumps(entry))
    redis_client.hset(keys.API_KEY_DIGESTS, digest(secret), legacy_id)
    headers = {"Authorization": f"Bearer {secret}"}
    for method, path, _ in ROUTES:
        assert call(client, method, path, headers).status_code not in (401, 403), path
    assert ApiKeyRegistry(redis_client).revoke(legacy_id)
    assert client.get("/v1/alerts", headers=headers).status_code == 401


# --- Keys limited to sending numbers ----------------------------------------------------------


def test_a_send_from_a_number_the_key_may_not_use_is_403(client, redis_client, second_number):
    for number in (NUMBER, SECOND_NUMBER):
        CustomerWindows(redis_client).record_inbound(number, CUSTOMER, time.time() - 60)
    limited = key_with(redis_client, "send", "read", numbers=(SECOND_NUMBER,))
    for body in (TEXT, {**TEXT, "phone_number_id": NUMBER}):  # the default, and named
        refused = client.post("/v1/messages", json=body, headers=limited)
        assert refused.status_code == 403
        assert refused.json["error"] == {
            "code": "number_not_allowed",
            "message": f"this API key may not use the number {NUMBER}",
        }
    mixed = {"messages": [{**TEMPLATE, "phone_number_id": SECOND_NUMBER}, TEMPLATE]}
    refused = client.post("/v1/messages/batch", json=mixed, headers=limited)
    assert (refused.status_code, refused.json["error"]["code"]) == (403, "number_not_allowed")
    assert not redis_client.keys("wa:msg:*")

    sent = client.post(
        "/v1/messages", json={**TEXT, "phone_number_id": SECOND_NUMBER}, headers=limited
    )
    assert sent.status_code == 202
    assert client.get(f"/v1/messages/{sent.json['id']}", headers=limited).status_code == 200
    # A message of the configured number is not this key's to read.
    other = client.post("/v1/messages", json=TEXT, headers=AUTH).json["id"]
    shown = client.get(f"/v1/messages/{other}", headers=limited)
    assert (shown.status_code, shown.json["error"]["code"]) == (403, "number_not_allowed")


def test_a_key_limited_to_the_configured_number_sends_and_reads_it(client, redis_client):
    CustomerWindows(redis_client).record_inbound(NUMBER, CUSTOMER, time.time() - 60)
    limited = key_with(redis_client, "send", "read", numbers=(NUMBER,))
    sent = client.post("/v1/messages", json=TEXT, headers=limited)
    assert sent.status_code == 202
    assert MessageStore(redis_client).get(sent.json["id"]) is not None
    assert client.get(f"/v1/messages/{sent.json['id']}", headers=limited).status_code == 200
    started = client.post(f"/v1/conversations/{CUSTOMER}/handoff", headers=limited)
    assert started.status_code == 201
    assert client.get(f"/v1/conversations/{CUSTOMER}", headers=limited).status_code == 200


@pytest.mark.parametrize(
    "method, path", [(m, p) for m, p, _ in ROUTES if p.startswith("/v1/conversations/")]
)
def test_the_conversations_of_another_number_are_403(client, redis_client, method, path):
    limited = key_with(redis_client, "send", "read", numbers=(SECOND_NUMBER,))
    refused = call(client, method, path, limited)
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "number_not_allowed"
    assert HandoffStore(redis_client).get(NUMBER, CUSTOMER) is None
