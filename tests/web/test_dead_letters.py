"""The dead-letter API in-process, over the session's Redis."""

from __future__ import annotations

import pytest

from app.delivery import dead_letters as dl
from app.delivery.dead_letters import DeadLetterStore
from app.delivery.messages import DEAD_LETTERED, QUEUED, MessageStore
from tests.web.test_messages import AUTH, TEMPLATE, make_client, post, task_ids


@pytest.fixture
def client(redis_client):
    return make_client()


@pytest.fixture
def stores(redis_client):
    return MessageStore(redis_client), DeadLetterStore(redis_client)


def dead_letter(client, redis_client, stores, reason=dl.PERMANENT_ERROR, code=131026, key=None):
    """A message accepted by the API, tried once and given up with ``reason``."""
    headers = {"Idempotency-Key": key} if key else {}
    message_id = post(client, TEMPLATE, headers).json["id"]
    store, dead_letters = stores
    store.mark_sending(message_id, 1)
    dead_letters.add(store, message_id, reason, {"code": code, "title": "Message undeliverable"})
    redis_client.delete("send.normal")  # the first send task already ran
    return message_id


def test_list_and_filter(client, redis_client, stores):
    a = dead_letter(client, redis_client, stores)
    b = dead_letter(client, redis_client, stores, dl.WINDOW_CLOSED, 131047)
    body = client.get("/v1/dead-letters", headers=AUTH).json
    assert [d["id"] for d in body["dead_letters"]] == [b, a]
    assert body["total"] == 2 and body["next_offset"] is None
    only = client.get("/v1/dead-letters?reason=window_closed", headers=AUTH).json
    assert [d["id"] for d in only["dead_letters"]] == [b]
    by_code = client.get("/v1/dead-letters?code=131026", headers=AUTH).json
    assert [(d["id"], d["code"], d["reason"]) for d in by_code["dead_letters"]] == [
        (a, 131026, dl.PERMANENT_ERROR)
    ]
    page = client.get("/v1/dead-letters?limit=1", headers=AUTH).json
    assert len(page["dead_letters"]) == 1 and page["next_offset"] == 1


def test_a_bad_reason_is_422(client):
    response = client.get("/v1/dead-letters?reason=bored", headers=AUTH)
    assert response.status_code == 422 and response.json["error"]["field"] == "reason"


@pytest.mark.parametrize(
    ("query", "field"),
    [("code=abc", "code"), ("limit=0", "limit"), ("limit=x", "limit"), ("offset=-1", "offset")],
)
def test_a_bad_number_is_400(client, query, field):
    response = client.get(f"/v1/dead-letters?{query}", headers=AUTH)
    assert response.status_code == 400
    assert response.json["error"] == {
        "code": "invalid_parameter",
        "message": response.json["error"]["message"],
        "field": field,
    }


@pytest.mark.parametrize("name", ["code", "limit", "offset"])
@pytest.mark.parametrize("value", ["²", "١٢", "-1", "1e3", "true", "+1", "1_000", "9" * 4000])
def test_numbers_are_ascii_digits_only(client, name, value):
    response = client.get("/v1/dead-letters", query_string={name: value}, headers=AUTH)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_parameter"
    assert response.json["error"]["field"] == name


def test_show_has_the_full_message_and_error(client, redis_client, stores):
    message_id = dead_letter(client, redis_client, stores)
    body = client.get(f"/v1/dead-letters/{message_id}", headers=AUTH).json
    assert body["message"]["template"]["name"] == "order_update"
    assert body["error"]["code"] == 131026 and body["attempts"] == 1
    assert body["first_failed_at"] <= body["last_failed_at"]
    assert client.get("/v1/dead-letters/nope", headers=AUTH).status_code == 404


def test_replay_keeps_id_and_idempotency_and_resets_attempts(client, redis_client, stores):
    message_id = dead_letter(client, redis_client, stores, key="order-99")
    response = client.post(f"/v1/dead-letters/{message_id}/replay", headers=AUTH)
    assert response.status_code == 202
    assert response.json == {"id": message_id, "status": "queued"}
    assert task_ids(redis_client, "send.normal") == [message_id]
    record = stores[0].get(message_id)
    assert (record.status, record.attempts, record.error) == (QUEUED, 0, None)
    # Its idempotency key still answers with the same id and enqueues nothing more.
    again = post(client, TEMPLATE, {"Idempotency-Key": "order-99"})
    assert again.json["id"] == message_id
    assert task_ids(redis_client, "send.normal") == [message_id]
    assert client.post(f"/v1/dead-letters/{message_id}/replay", headers=AUTH).status_code == 404


def test_replay_by_filter(client, redis_client, stores):
    dead_letter(client, redis_client, stores)
    closed = dead_letter(client, redis_client, stores, dl.WINDOW_CLOSED, 131047)
    response = client.post(
        "/v1/dead-letters/replay", json={"reason": "window_closed"}, headers=AUTH
    )
    assert response.status_code == 202 and response.json == {"replayed": [closed], "count": 1}
    assert len(stores[1]) == 1


def test_replay_by_filter_needs_a_filter(client, redis_client, stores):
    dead_letter(client, redis_client, stores)
    response = client.post("/v1/dead-letters/replay", json={}, headers=AUTH)
    assert response.status_code == 422
    assert client.post("/v1/dead-letters/replay", data=b"[", headers=AUTH).status_code == 400
    response = client.post("/v1/dead-letters/replay", json={"all": True, "limit": 0}, headers=AUTH)
    assert response.status_code == 422 and response.json["error"]["field"] == "limit"
    everything = client.post("/v1/dead-letters/replay", json={"all": True}, headers=AUTH)
    assert everything.json["count"] == 1


def test_delete(client, redis_client, stores):
    message_id = dead_letter(client, redis_client, stores)
    assert client.delete(f"/v1/dead-letters/{message_id}", headers=AUTH).status_code == 204
    assert client.delete(f"/v1/dead-letters/{message_id}", headers=AUTH).status_code == 404
    assert stores[0].get(message_id).status == DEAD_LETTERED


def inbound_letter(redis_client) -> str:
    """A message Meta's format does not allow, dead-lettered as it came in."""
    webhook = {"object": "whatsapp_business_account", "entry": []}
    part = {"id": "wamid.bad", "timestamp": "1e999"}
    return (
        DeadLetterStore(redis_client)
        .add_inbound("message", dl.MALFORMED, part, task="inbound.process_webhook", payload=webhook)
        .id
    )


def test_inbound_letters_are_listed_by_direction_and_replayed_as_webhooks(
    client, redis_client, stores
):
    outbound = dead_letter(client, redis_client, stores)
    inbound = inbound_letter(redis_client)
    listed = client.get("/v1/dead-letters?direction=inbound", headers=AUTH).json["dead_letters"]
    assert [(d["id"], d["direction"], d["kind"]) for d in listed] == [
        (inbound, "inbound", "message")
    ]
    listed = client.get("/v1/dead-letters?direction=outbound", headers=AUTH).json["dead_letters"]
    assert [d["id"] for d in listed] == [outbound]
    bad = client.get("/v1/dead-letters?direction=sideways", headers=AUTH)
    assert bad.status_code == 422 and bad.json["error"]["field"] == "direction"
    assert client.post(f"/v1/dead-letters/{inbound}/replay", headers=AUTH).status_code == 202
    assert redis_client.llen("inbound") == 1
    response = client.post("/v1/dead-letters/replay", json={"direction": "inbound"}, headers=AUTH)
    assert response.status_code == 202 and response.json["count"] == 0
