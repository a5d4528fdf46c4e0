"""``/v1/conversations/<wa_id>``: Bearer keys, the conversation's state, and handoff."""

from __future__ import annotations

import time

import pytest

from app.config import get_settings
from app.conversations.context import ConversationStore
from app.conversations.handoff import HandoffStore
from app.web import create_app
from tests.conversations.helpers import exchange, reply
from tests.stack import TEST_CREDENTIALS

NUMBER = TEST_CREDENTIALS["WHATSAPP_PHONE_NUMBER_ID"]
WA_ID = "573001234567"
KEY = "gw-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def client(redis_client, monkeypatch):
    monkeypatch.setenv("GATEWAY_API_KEYS", f"other-key-xyz, {KEY}")
    return create_app({"SETTINGS": get_settings(), "TESTING": True}).test_client()


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}, {"Authorization": "Bearer "}],
)
@pytest.mark.parametrize(
    "method, path",
    [
        ("get", f"/v1/conversations/{WA_ID}"),
        ("post", f"/v1/conversations/{WA_ID}/handoff"),
        ("delete", f"/v1/conversations/{WA_ID}/handoff"),
    ],
)
def test_every_endpoint_wants_a_valid_bearer_key(client, redis_client, headers, method, path):
    response = getattr(client, method)(path, headers=headers)
    assert response.status_code == 401
    assert response.json["error"]["code"] in ("missing_api_key", "invalid_api_key")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert KEY not in response.get_data(as_text=True)
    assert HandoffStore(redis_client).get(NUMBER, WA_ID) is None


def test_no_configured_key_closes_the_api(redis_client, monkeypatch):
    monkeypatch.setenv("GATEWAY_API_KEYS", "")
    client = create_app({"SETTINGS": get_settings(), "TESTING": True}).test_client()
    assert client.get(f"/v1/conversations/{WA_ID}", headers=AUTH).status_code == 401


def test_a_malformed_number_is_400(client):
    response = client.get("/v1/conversations/not-a-number", headers=AUTH)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_wa_id"


def test_an_unknown_customer_is_404(client):
    response = client.get(f"/v1/conversations/{WA_ID}", headers=AUTH)
    assert response.status_code == 404
    assert response.json["error"]["code"] == "conversation_not_found"


def test_the_conversation_its_profile_handoff_and_window(client, redis_client):
    store = ConversationStore(redis_client)
    store.record(NUMBER, WA_ID, exchange("wamid.1", "Hola", age=600), text="Hola")
    store.record(NUMBER, WA_ID, reply("r1", "¡Hola! ¿En qué puedo ayudarte?", age=590))
    body = client.get(f"/v1/conversations/{WA_ID}", headers=AUTH).json
    assert [e["text"] for e in body["context"]["exchanges"]] == [
        "Hola",
        "¡Hola! ¿En qué puedo ayudarte?",
    ]
    assert body["context"]["expires_at"] > time.time() + 23 * 3600
    assert body["profile"]["message_count"] == 1 and body["profile"]["language"] == "es"
    assert body["handoff"] == {"active": False}
    window = body["window"]
    assert window["open"] is True
    assert window["closes_at"] == pytest.approx(window["last_inbound_at"] + 24 * 3600)
    assert window["closes_at"] == pytest.approx(time.time() - 600 + 24 * 3600, abs=5)


def test_handoff_starts_once_and_ends_once(client, redis_client):
    path = f"/v1/conversations/{WA_ID}/handoff"
    started = client.post(path, json={"reason": "Pedido VIP"}, headers=AUTH)
    assert started.status_code == 201
    assert started.json["handoff"]["active"] is True
    assert started.json["handoff"]["by"] == "operator"
    assert started.json["handoff"]["reason"] == "Pedido VIP"
    again = client.post(path, headers=AUTH)
    assert again.status_code == 200 and again.json["handoff"]["reason"] == "Pedido VIP"
    shown = client.get(f"/v1/conversations/{WA_ID}", headers=AUTH).json
    assert shown["handoff"]["active"] is True and shown["context"] is None

    ended = client.delete(path, headers=AUTH)
    assert ended.status_code == 200 and ended.json["handoff"] == {"active": False}
    assert HandoffStore(redis_client).get(NUMBER, WA_ID) is None
    assert client.delete(path, headers=AUTH).status_code == 404


@pytest.mark.parametrize(
    "body, code",
    [
        (b"{not json", "invalid_json"),
        (b"[1]", "invalid_json"),
        (b'{"reason": 7}', "invalid_reason"),
    ],
)
def test_a_malformed_handoff_body_is_400_and_changes_nothing(client, redis_client, body, code):
    response = client.post(
        f"/v1/conversations/{WA_ID}/handoff",
        data=body,
        headers=AUTH,
        content_type="application/json",
    )
    assert response.status_code == 400 and response.json["error"]["code"] == code
    assert HandoffStore(redis_client).get(NUMBER, WA_ID) is None


def test_redis_down_is_503(client, monkeypatch):
    import redis

    def down(*args, **kwargs):
        raise redis.ConnectionError("gone")

    monkeypatch.setattr(redis.Redis, "get", down)
    response = client.get(f"/v1/conversations/{WA_ID}", headers=AUTH)
    assert response.status_code == 503
    assert response.json["error"]["code"] == "redis_unavailable"


@pytest.mark.parametrize(
    "customer_id",
    [
        "573001112299%0A",  # a trailing newline, which a '$' pattern lets through
        "573001112299%0D%0A",
        "%0A573001112299",
        "US.13491208655302741918%0A",
        "%C2%B2%C2%B2%C2%B2%C2%B2%C2%B2",  # superscript digits: digits to str.isdigit
        "%D9%A1%D9%A2%D9%A3%D9%A4%D9%A5",  # Arabic-Indic digits
        "1" * 21,
        "..%2F..%2F573001112299",
    ],
)
def test_a_customer_id_with_anything_around_it_is_400_and_hands_nothing(
    client, redis_client, customer_id
):
    for method in ("get", "post", "delete"):
        path = f"/v1/conversations/{customer_id}" + ("/handoff" if method != "get" else "")
        response = getattr(client, method)(path, headers=AUTH)
        assert response.status_code in (400, 404), (method, response.status_code)
        if response.status_code == 400:
            assert response.json["error"]["code"] == "invalid_wa_id"
    assert not redis_client.keys("*handoff*")


def test_a_newline_suffixed_number_is_400_not_a_handoff_for_someone_else(client, redis_client):
    response = client.post("/v1/conversations/573001112299%0A/handoff", headers=AUTH)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_wa_id"
    assert HandoffStore(redis_client).get(NUMBER, "573001112299") is None
    assert HandoffStore(redis_client).get(NUMBER, "573001112299\n") is None


def test_the_active_handoffs_are_listed_oldest_first_and_paged(client, redis_client):
    handoffs = HandoffStore(redis_client)
    for wa_id in ("573001110001", "573001110002", "573001110003"):
        handoffs.start(NUMBER, wa_id, by="operator", reason="VIP")
    redis_client.delete(handoffs.key(NUMBER, "573001110002"))  # expired: dropped from the list
    first = client.get("/v1/conversations?handoff=active&limit=1", headers=AUTH).json
    assert [c["wa_id"] for c in first["conversations"]] == ["573001110001"]
    assert first["next_offset"] == 1
    rest = client.get("/v1/conversations?handoff=active&offset=1", headers=AUTH).json
    assert [c["wa_id"] for c in rest["conversations"]] == ["573001110003"]
    assert rest["next_offset"] is None
    assert rest["conversations"][0]["handoff"]["reason"] == "VIP"


@pytest.mark.parametrize(
    "query", ["", "?handoff=ended", "?handoff=active&limit=0", "?handoff=active&offset=-1"]
)
def test_a_listing_other_than_the_active_handoffs_is_400(client, query):
    answer = client.get(f"/v1/conversations{query}", headers=AUTH)
    assert answer.status_code == 400
    assert answer.json["error"]["code"] == "invalid_parameter"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "text"),
        ({"text": "   "}, "text"),
        ({"text": "x" * 4097}, "text"),
        ({"text": "Hola", "agent": 7}, "agent"),
        ([], "body"),
    ],
)
def test_an_agent_answer_that_is_no_text_is_422_and_nothing_is_sent(
    client, redis_client, body, field
):
    from app.delivery.window import CustomerWindows

    CustomerWindows(redis_client).record_inbound(NUMBER, WA_ID, time.time() - 60)
    answer = client.post(f"/v1/conversations/{WA_ID}/messages", json=body, headers=AUTH)
    assert answer.status_code == 422 and answer.json["error"]["field"] == field
    assert redis_client.keys("wa:msg:*") == []


def test_an_agent_answer_goes_on_the_high_lane_and_into_the_context(client, redis_client):
    from app.delivery.window import CustomerWindows
    from tests.stack import queued_tasks

    CustomerWindows(redis_client).record_inbound(NUMBER, WA_ID, time.time() - 60)
    answer = client.post(
        f"/v1/conversations/{WA_ID}/messages",
        json={"text": "Soy Ana", "agent": "Ana"},
        headers=AUTH,
    )
    assert answer.status_code == 202
    message_id = answer.json["id"]
    assert [args[0] for _, args, _ in queued_tasks(redis_client, "send.high")] == [message_id]
    ((name, (reply,), _),) = queued_tasks(redis_client, "context")
    assert name == "context.record_reply"
    assert reply["exchange"]["role"] == "business"
    assert reply["exchange"]["data"] == {"source": "agent", "agent": "Ana"}
