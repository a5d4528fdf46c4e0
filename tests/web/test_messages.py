"""The send API in-process: Flask's test client, the session's Redis as store and broker."""

from __future__ import annotations

import json
import time

import pytest

import celeryconfig
from app.config import get_settings
from app.delivery.messages import MessageStore
from app.delivery.window import CustomerWindows
from app.web import create_app
from tests.stack import SECOND_NUMBER, TEST_CREDENTIALS, queued_tasks

API_KEY = "gw-test-key-0123456789abcdef"
OTHER_KEY = "gw-second-key-abcdef0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
NUMBER = TEST_CREDENTIALS["WHATSAPP_PHONE_NUMBER_ID"]
CUSTOMER = "573001234567"
TEXT = {"to": CUSTOMER, "type": "text", "text": {"body": "Your order has shipped"}}
TEMPLATE = {
    "to": CUSTOMER,
    "type": "template",
    "template": {"name": "order_update", "language": {"code": "es"}},
}


def make_client(**config):
    app = create_app(
        {
            "SETTINGS": get_settings(),
            "TESTING": True,
            "GATEWAY_API_KEYS": f"{API_KEY}, {OTHER_KEY}",
            "WINDOW_FALLBACK_TEMPLATE": "",
            **config,
        }
    )
    return app.test_client()


@pytest.fixture
def client(redis_client):
    return make_client()


@pytest.fixture
def open_window(redis_client):
    CustomerWindows(redis_client).record_inbound(NUMBER, CUSTOMER, time.time() - 60)


def task_ids(redis_client, lane: str) -> list[str]:
    """Message ids of the send tasks waiting on ``lane``, in the order workers will take them."""
    out = []
    for task, args, _ in queued_tasks(redis_client, lane):
        out += args[0] if task == "outbound.send_batch" else [args[0]]
    return out


def post(client, body, headers=None, path="/v1/messages"):
    return client.post(path, data=json.dumps(body), headers={**AUTH, **(headers or {})})


# --- Authentication ---------------------------------------------------------------------------


def test_missing_or_wrong_key_is_401_and_nothing_is_enqueued(client, redis_client, open_window):
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}):
        response = client.post("/v1/messages", json=TEXT, headers=headers)
        assert response.status_code == 401
        assert response.json["error"]["code"] == "missing_api_key"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    response = client.post(
        "/v1/messages", json=TEXT, headers={"Authorization": f"Bearer {API_KEY}x"}
    )
    assert response.status_code == 401 and response.json["error"]["code"] == "invalid_api_key"
    assert API_KEY not in response.get_data(as_text=True)
    assert client.get("/v1/messages/abc").status_code == 401
    assert client.get("/v1/dead-letters").status_code == 401
    assert task_ids(redis_client, "send.normal") == []


def test_every_configured_key_is_accepted(client, open_window):
    response = client.post(
        "/v1/messages", json=TEXT, headers={"Authorization": f"Bearer {OTHER_KEY}"}
    )
    assert response.status_code == 202


def test_no_configured_key_refuses_everything(redis_client, open_window):
    client = make_client(GATEWAY_API_KEYS="")
    assert post(client, TEXT).status_code == 401
    short = make_client(GATEWAY_API_KEYS="short")
    assert (
        short.post("/v1/messages", json=TEXT, headers={"Authorization": "Bearer short"}).status_code
        == 401
    )


# --- POST /v1/messages ------------------------------------------------------------------------


def test_accepted_message_is_recorded_and_queued_on_its_lane(client, redis_client, open_window):
    response = post(client, {**TEXT, "priority": "high"})
    assert response.status_code == 202
    message_id = response.json["id"]
    assert response.json == {"id": message_id, "status": "queued"}
    assert task_ids(redis_client, "send.high") == [message_id]
    record = MessageStore(redis_client).get(message_id)
    assert record.priority == "high"
    assert record.payload == {**TEXT, "messaging_product": "whatsapp"}  # no 'priority' for Meta


def test_default_lane_is_normal(client, redis_client, open_window):
    message_id = post(client, TEXT).json["id"]
    assert task_ids(redis_client, "send.normal") == [message_id]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**TEXT, "to": "+57 300 123 4567"}, "to"),
        ({**TEXT, "to": "57999"}, "to"),
        ({**TEXT, "to": CUSTOMER + "\n"}, "to"),  # a '$' pattern let the newline through
        ({**TEXT, "to": "+" + CUSTOMER + "\n"}, "to"),
        ({**TEXT, "to": "\n" + CUSTOMER}, "to"),
        ({**TEXT, "to": "５７３００１２３４５６７"}, "to"),  # fullwidth digits
        ({**TEXT, "to": None, "recipient": "US.13491208655302741918\n"}, "recipient"),
        ({**TEXT, "phone_number_id": NUMBER + "\n"}, "phone_number_id"),
        ({**TEXT, "type": "image", "image": {"id": "../../../_sim/config"}}, "image.id"),
        ({**TEXT, "type": "image", "image": {"id": "1003383421387256\n"}}, "image.id"),
        ({"type": "text", "text": {"body": "x"}}, "to"),
        ({**TEXT, "type": "fax"}, "type"),
        ({"to": CUSTOMER, "type": "text"}, "text"),
        ({**TEXT, "text": {"body": ""}}, "text.body"),
        ({**TEXT, "text": {"body": "x" * 4097}}, "text.body"),
        ({**TEXT, "priority": "urgent"}, "priority"),
        ([TEXT], "body"),
    ],
)
def test_invalid_message_is_422_naming_the_field(client, redis_client, open_window, body, field):
    response = post(client, body)
    assert response.status_code == 422
    assert response.json["error"]["code"] == "invalid_message"
    assert response.json["error"]["field"] == field
    assert task_ids(redis_client, "send.normal") == []
    assert not redis_client.keys("wa:msg:*")


def test_malformed_and_oversized_bodies(client, redis_client):
    response = client.post("/v1/messages", data=b"{not json", headers=AUTH)
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_json"
    response = client.post("/v1/messages", data=b"x" * (300 * 1024), headers=AUTH)
    assert response.status_code == 413


def test_idempotent_repeat_returns_the_same_id_and_enqueues_nothing(
    client, redis_client, open_window
):
    headers = {"Idempotency-Key": "order-1234-shipped"}
    first = post(client, TEXT, headers)
    # The same body with its keys in another order is the same body.
    again = client.post(
        "/v1/messages",
        data=json.dumps(dict(reversed(list(TEXT.items())))),
        headers={**AUTH, **headers},
    )
    assert first.status_code == again.status_code == 202
    assert again.json["id"] == first.json["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert task_ids(redis_client, "send.normal") == [first.json["id"]]
    assert (
        MessageStore(redis_client).get(first.json["id"]).idempotency_key
        == headers["Idempotency-Key"]
    )


def test_same_key_with_a_different_body_is_409(client, redis_client, open_window):
    headers = {"Idempotency-Key": "order-1234-shipped"}
    first = post(client, TEXT, headers)
    other = post(client, {**TEXT, "text": {"body": "something else"}}, headers)
    assert other.status_code == 409
    assert other.json["error"]["code"] == "idempotency_conflict"
    assert task_ids(redis_client, "send.normal") == [first.json["id"]]


def test_idempotency_key_is_bounded(client, open_window):
    response = post(client, TEXT, {"Idempotency-Key": "k" * 256})
    assert response.status_code == 422
    assert response.json["error"]["field"] == "Idempotency-Key"


def test_broker_down_is_503_and_nothing_is_kept(client, redis_client, open_window, monkeypatch):
    from app.web import messages

    def refuse(pairs):
        raise OSError("connection refused")

    monkeypatch.setattr(messages, "enqueue_sends", refuse)
    response = post(client, TEXT, {"Idempotency-Key": "k1"})
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert not redis_client.keys("wa:msg:*")
    monkeypatch.undo()
    # The client's retry with the same key is accepted afresh.
    assert post(client, TEXT, {"Idempotency-Key": "k1"}).status_code == 202


# --- The 24-hour window -------------------------------------------------------------------------


def test_free_form_message_to_a_closed_window_is_422_window_closed(client, redis_client):
    response = post(client, TEXT)
    assert response.status_code == 422
    assert response.json["error"]["code"] == "window_closed"
    assert response.json["error"]["field"] == "to"
    assert task_ids(redis_client, "send.normal") == []


def test_template_needs_no_window(client, redis_client):
    response = post(client, TEMPLATE)
    assert response.status_code == 202


def test_closed_window_with_a_fallback_sends_the_template_and_says_so(redis_client):
    client = make_client(WINDOW_FALLBACK_TEMPLATE="reengage:es")
    response = post(client, TEXT)
    assert response.status_code == 202
    record = MessageStore(redis_client).get(response.json["id"])
    assert record.payload["type"] == "template"
    assert record.payload["template"] == {"name": "reengage", "language": {"code": "es"}}
    assert record.history[0]["template_fallback"] == "reengage"
    assert record.history[0]["replaced_type"] == "text"


def test_an_inbound_message_opens_the_window(client, redis_client):
    assert post(client, TEXT).status_code == 422
    CustomerWindows(redis_client).record_inbound(NUMBER, CUSTOMER)
    assert post(client, TEXT).status_code == 202


# --- Batch ------------------------------------------------------------------------------------


def test_batch_accepts_up_to_1000_with_one_id_each(client, redis_client):
    messages = [{**TEMPLATE, "to": f"5730012{i:05d}", "priority": "bulk"} for i in range(1000)]
    response = post(client, {"messages": messages}, path="/v1/messages/batch")
    assert response.status_code == 202
    ids = [m["id"] for m in response.json["messages"]]
    assert len(set(ids)) == 1000
    assert task_ids(redis_client, "send.bulk") == ids
    assert redis_client.llen("send.bulk") == 1000 / celeryconfig.SEND_BATCH_SIZE  # batched
    store = MessageStore(redis_client)
    assert store.get(ids[417]).to == "573001200417"


def test_batch_is_all_or_nothing_and_names_each_bad_message(client, redis_client):
    messages = [TEMPLATE, {**TEMPLATE, "to": "123"}, TEMPLATE, TEXT]
    response = post(client, {"messages": messages}, path="/v1/messages/batch")
    assert response.status_code == 422
    errors = response.json["error"]["errors"]
    assert [(e["index"], e["code"], e["field"]) for e in errors] == [
        (1, "invalid_message", "to"),
        (3, "window_closed", "to"),
    ]
    assert not redis_client.keys("wa:msg:*")


@pytest.mark.parametrize("body", [{"messages": []}, {"messages": "x"}, {}, [TEMPLATE]])
def test_batch_shape_is_checked(client, body):
    response = post(client, body, path="/v1/messages/batch")
    assert response.status_code == 422 and response.json["error"]["field"] == "messages"


def test_batch_over_1000_is_refused(client):
    response = post(client, {"messages": [TEMPLATE] * 1001}, path="/v1/messages/batch")
    assert response.status_code == 422
    assert "1000" in response.json["error"]["message"]


def test_batch_reads_its_customers_keys_at_once_and_keeps_each_on_its_record(
    client, redis_client, monkeypatch
):
    from app.conversations.customers import CustomerBook, Identity

    user_id = "CO.11223344556677889900"
    CustomerBook(redis_client).learn(NUMBER, Identity(wa_id=CUSTOMER, user_id=user_id))

    def one_by_one(*args):
        raise AssertionError("a round trip per message")

    monkeypatch.setattr(CustomerBook, "key_for", one_by_one)
    messages = [TEMPLATE, {**TEMPLATE, "to": "573001234568"}]
    response = post(client, {"messages": messages}, path="/v1/messages/batch")
    assert response.status_code == 202
    store = MessageStore(redis_client)
    customers = [store.get(m["id"]).customer for m in response.json["messages"]]
    assert customers == [user_id, "573001234568"]


def test_batch_is_idempotent_as_a_whole(client, redis_client):
    body = {"messages": [TEMPLATE, {**TEMPLATE, "to": "573001234568"}]}
    headers = {"Idempotency-Key": "campaign-42"}
    first = post(client, body, headers, path="/v1/messages/batch")
    again = post(client, body, headers, path="/v1/messages/batch")
    assert first.json["messages"] == again.json["messages"]
    assert len(task_ids(redis_client, "send.normal")) == 2


# --- GET /v1/messages/<id> --------------------------------------------------------------------


def test_get_shows_status_attempts_and_history(client, redis_client):
    message_id = post(client, TEMPLATE).json["id"]
    store = MessageStore(redis_client)
    store.mark_sending(message_id, 1)
    store.record_wamid(message_id, "wamid.abc")
    store.advance(message_id, "read")
    store.advance(message_id, "delivered")  # late, out of order
    body = client.get(f"/v1/messages/{message_id}", headers=AUTH).json
    assert (body["status"], body["wamid"], body["attempts"]) == ("read", "wamid.abc", 1)
    assert [h["status"] for h in body["history"]] == [
        "queued",
        "sending",
        "sent",
        "read",
        "delivered",
    ]
    assert body["history"][-1]["ignored"] is True
    assert all(isinstance(h["at"], float) for h in body["history"])
    assert body["message"] is None  # read: the body is not kept (MESSAGE_KEEP_BODY)


def test_get_unknown_is_404(client):
    response = client.get("/v1/messages/doesnotexist", headers=AUTH)
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"


# --- Sending numbers ----------------------------------------------------------------------------


def test_a_registered_number_may_send_within_its_own_window(client, redis_client, second_number):
    CustomerWindows(redis_client).record_inbound(SECOND_NUMBER, CUSTOMER, time.time() - 60)
    # The customer wrote to the second number only: the configured one's window is closed.
    closed = post(client, TEXT)
    assert (closed.status_code, closed.json["error"]["code"]) == (422, "window_closed")
    response = post(client, {**TEXT, "phone_number_id": SECOND_NUMBER})
    assert response.status_code == 202
    record = MessageStore(redis_client).get(response.json["id"])
    assert record.phone_number_id == SECOND_NUMBER
    assert "phone_number_id" not in record.payload  # the gateway's field, not Meta's
    shown = client.get(f"/v1/messages/{record.id}", headers=AUTH).json
    assert shown["phone_number_id"] == SECOND_NUMBER


def test_the_configured_number_is_the_default_and_may_be_named(client, redis_client, open_window):
    store = MessageStore(redis_client)
    implicit = post(client, TEXT).json["id"]
    explicit = post(client, {**TEXT, "phone_number_id": NUMBER}).json["id"]
    assert store.get(implicit).phone_number_id == store.get(explicit).phone_number_id == NUMBER


@pytest.mark.parametrize("number", ["106540352240000", "abc", "", 106540352242922, None])
def test_an_unknown_or_malformed_number_is_422_naming_the_field(
    client, redis_client, open_window, second_number, number
):
    response = post(client, {**TEMPLATE, "phone_number_id": number})
    assert response.status_code == 422
    assert response.json["error"]["code"] == "invalid_message"
    assert response.json["error"]["field"] == "phone_number_id"
    assert task_ids(redis_client, "send.normal") == []
    assert not redis_client.keys("wa:msg:*")


def test_a_batch_names_each_message_from_an_unknown_number(client, redis_client, second_number):
    messages = [
        {**TEMPLATE, "phone_number_id": SECOND_NUMBER},
        {**TEMPLATE, "phone_number_id": "106540352240000"},
        TEMPLATE,
    ]
    response = post(client, {"messages": messages}, path="/v1/messages/batch")
    assert response.status_code == 422
    errors = response.json["error"]["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(1, "phone_number_id")]
    assert not redis_client.keys("wa:msg:*")
    del messages[1]
    response = post(client, {"messages": messages}, path="/v1/messages/batch")
    assert response.status_code == 202
    store = MessageStore(redis_client)
    numbers = [store.get(m["id"]).phone_number_id for m in response.json["messages"]]
    assert numbers == [SECOND_NUMBER, NUMBER]


# --- Backpressure -----------------------------------------------------------------------------


def capped_client(caps: str):
    from tests.stack import settings_of

    env = {**TEST_CREDENTIALS, "REDIS_URL": get_settings().redis_url, "SEND_QUEUE_CAPS": caps}
    return make_client(SETTINGS=settings_of(env))


def bulk(n: int, start: int = 0) -> list[dict]:
    return [{**TEMPLATE, "to": f"5730077{start + i:05d}", "priority": "bulk"} for i in range(n)]


def test_a_full_bulk_lane_answers_429_queue_full_and_keeps_what_it_had(redis_client):
    client = capped_client("bulk=5")
    first = post(client, {"messages": bulk(4)}, path="/v1/messages/batch")
    assert first.status_code == 202
    # Two more would make 6: the whole batch is refused, with when to come back.
    refused = post(client, {"messages": bulk(2, 4)}, path="/v1/messages/batch")
    assert refused.status_code == 429
    assert refused.json["error"]["code"] == "queue_full"
    assert refused.json["error"]["field"] == "priority"
    assert int(refused.headers["Retry-After"]) >= 1
    one = post(client, bulk(1, 4)[0])
    assert one.status_code == 202  # 5: at the cap, not past it
    again = post(client, bulk(1, 5)[0])
    assert again.status_code == 429 and again.json["error"]["code"] == "queue_full"
    # Nothing refused was recorded or queued; everything accepted still is.
    ids = [m["id"] for m in first.json["messages"]] + [one.json["id"]]
    assert sorted(task_ids(redis_client, "send.bulk")) == sorted(ids)
    assert MessageStore(redis_client).waiting("bulk", NUMBER) == 5
    # The other lanes have no cap by default, and take messages as before.
    urgent = post(client, {**TEMPLATE, "priority": "high"})
    normal = post(client, {**TEMPLATE, "priority": "normal"})
    assert (urgent.status_code, normal.status_code) == (202, 202)


def test_a_lane_takes_messages_again_once_it_drains(redis_client):
    client = capped_client("bulk=2")
    accepted = post(client, {"messages": bulk(2)}, path="/v1/messages/batch")
    assert post(client, bulk(1, 2)[0]).status_code == 429
    store = MessageStore(redis_client)
    store.record_wamid(accepted.json["messages"][0]["id"], "wamid.sent")
    assert post(client, bulk(1, 2)[0]).status_code == 202


def test_a_repeated_request_is_answered_even_when_its_lane_is_full(redis_client):
    client = capped_client("bulk=1")
    key = {"Idempotency-Key": "campaign-1"}
    first = post(client, bulk(1)[0], headers=key)
    assert first.status_code == 202
    again = post(client, bulk(1)[0], headers=key)
    assert again.status_code == 202 and again.json["id"] == first.json["id"]
    # A new key on the full lane is refused, and may be used again once there is room.
    other = {"Idempotency-Key": "campaign-2"}
    assert post(client, bulk(1, 1)[0], headers=other).status_code == 429
    store = MessageStore(redis_client)
    store.send_ended(first.json["id"])
    assert post(client, bulk(1, 1)[0], headers=other).status_code == 202


def test_lane_caps_are_checked_when_settings_load():
    from app.errors import ConfigError
    from tests.stack import settings_of

    assert settings_of({"SEND_QUEUE_CAPS": "bulk=10, normal=0"}).send_queue_caps == {"bulk": 10}
    assert settings_of({}).send_queue_caps == {"bulk": 100_000}
    for bad in ("bulk", "urgent=5", "bulk=-1", "bulk=many"):
        with pytest.raises(ConfigError, match="SEND_QUEUE_CAPS entry 1"):
            settings_of({"SEND_QUEUE_CAPS": bad})
