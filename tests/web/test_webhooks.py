from __future__ import annotations

import json

import pytest

from app.config import get_settings
from app.web import create_app
from app.web.body import MAX_WEBHOOK_BYTES
from app.whatsapp.signature import SIGNATURE_HEADER, sign
from tests.stack import TEST_CREDENTIALS, text_webhook

SECRET = TEST_CREDENTIALS["WHATSAPP_WEBHOOK_SECRET"]
URL = "/webhooks/whatsapp"


@pytest.fixture
def client(redis_client):
    return create_app({"SETTINGS": get_settings(), "TESTING": True}).test_client()


def inbound_depth(redis_client) -> int:
    return redis_client.llen("inbound")


def post(client, body: bytes, signature: str | None = "auto", **headers):
    if signature == "auto":
        signature = sign(body, SECRET)
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    return client.post(URL, data=body, headers=headers, content_type="application/json")


def test_subscription_challenge_is_echoed_as_plain_text(client):
    token = TEST_CREDENTIALS["WHATSAPP_WEBHOOK_VERIFY_TOKEN"]
    response = client.get(
        URL,
        query_string={
            "hub.mode": "subscribe",
            "hub.verify_token": token,
            "hub.challenge": "1158201444",
        },
    )
    assert response.status_code == 200
    assert response.data == b"1158201444"
    assert response.mimetype == "text/plain"


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {
            "hub.mode": "unsubscribe",
            "hub.verify_token": TEST_CREDENTIALS["WHATSAPP_WEBHOOK_VERIFY_TOKEN"],
            "hub.challenge": "1",
        },
        {
            "hub.mode": "subscribe",
            "hub.verify_token": TEST_CREDENTIALS["WHATSAPP_WEBHOOK_VERIFY_TOKEN"],
        },
        {},
    ],
)
def test_subscription_with_wrong_token_or_mode_is_403(client, query):
    response = client.get(URL, query_string=query)
    assert response.status_code == 403
    assert response.json["error"]["code"] == "verification_failed"


def test_signed_webhook_is_enqueued_once(client, redis_client):
    body = json.dumps(text_webhook("573001234567", "Hola")).encode()
    response = post(client, body)
    assert response.status_code == 200
    assert response.json == {"status": "accepted"}
    assert inbound_depth(redis_client) == 1
    task = json.loads(redis_client.lindex("inbound", 0))
    assert task["headers"]["task"] == "inbound.process_webhook"
    assert task["content-type"] == "application/json"
    again = post(client, body)
    assert again.status_code == 200 and again.json == {"status": "duplicate"}
    assert inbound_depth(redis_client) == 1


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "sha256=",
        "sha256=" + "0" * 64,
        "md5=abc",
        sign(b"other body", SECRET),
        sign(b"x", "wrong-secret-123"),
    ],
)
def test_missing_or_wrong_signature_is_401_and_enqueues_nothing(client, redis_client, signature):
    body = json.dumps(text_webhook("573001234567", "Hola")).encode()
    response = post(client, body, signature=signature)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_signature"
    assert inbound_depth(redis_client) == 0


def test_oversized_body_is_413(client, redis_client):
    body = b"{" + b" " * MAX_WEBHOOK_BYTES + b"}"
    response = post(client, body)
    assert response.status_code == 413
    assert inbound_depth(redis_client) == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"not json", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b"[1, 2]", "invalid_payload"),
        (b'"text"', "invalid_payload"),
    ],
)
def test_signed_but_malformed_body_is_400(client, redis_client, body, code):
    response = post(client, body)
    assert response.status_code == 400
    assert response.json["error"]["code"] == code
    assert inbound_depth(redis_client) == 0


def test_unknown_fields_and_types_still_get_200(client, redis_client):
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "1", "changes": [{"field": "brand_new_field", "value": {"anything": [1, 2, 3]}}]}
        ],
        "extra": True,
    }
    assert post(client, json.dumps(payload).encode()).status_code == 200
    assert inbound_depth(redis_client) == 1


def test_other_methods_and_paths_answer_json_errors(client):
    assert client.put(URL).status_code == 405
    missing = client.get("/nothing-here")
    assert missing.status_code == 404
    assert missing.json["error"]["code"] == "not_found"


def test_healthz(client):
    assert client.get("/healthz").json == {"status": "ok"}


def test_timestamp_check_when_enabled(redis_client):
    import time

    from app.web.webhooks import TIMESTAMP_HEADER

    settings = get_settings().model_copy(update={"webhook_max_age": 300})
    client = create_app({"SETTINGS": settings, "TESTING": True}).test_client()
    now = int(time.time())
    # Well clear of the 300 s limit, so a slow machine cannot move a case across it.
    for stamp, status in [
        (None, 401),
        ("yesterday", 401),
        (str(now - 600), 401),
        (str(now + 600), 401),
        (str(now - 10), 200),
        (str(now), 200),
    ]:
        body = json.dumps(text_webhook("573001234567", f"Hola {stamp}")).encode()
        headers = {TIMESTAMP_HEADER: stamp} if stamp else {}
        response = post(client, body, **headers)
        assert response.status_code == status, stamp
        if status == 401:
            assert response.json["error"]["code"] == "stale_request"
    assert inbound_depth(redis_client) == 2


def test_timestamp_is_ignored_by_default(client, redis_client):
    body = json.dumps(text_webhook("573001234567", "Hola")).encode()
    assert post(client, body, **{"X-Webhook-Timestamp": "0"}).status_code == 200


def test_redelivery_is_remembered_for_metas_whole_retry_window(client, redis_client):
    body = json.dumps(text_webhook("573001234567", "Hola")).encode()
    post(client, body)
    (seen,) = redis_client.keys("wa:webhook:seen:*")
    assert redis_client.ttl(seen) > 7 * 24 * 3600 - 60


def test_previous_secret_is_accepted_while_rotating(redis_client):

    settings = get_settings().model_copy(
        update={"webhook_previous_secret": "the-old-app-secret-0001"}
    )
    client = create_app({"SETTINGS": settings, "TESTING": True}).test_client()
    body = json.dumps(text_webhook("573001234567", "Hola")).encode()
    assert post(client, body, signature=sign(body, "the-old-app-secret-0001")).status_code == 200
    assert post(client, body + b" ", signature=sign(body + b" ", SECRET)).status_code == 200
    assert post(client, b"{}", signature=sign(b"{}", "some-other-secret-1234")).status_code == 401


def test_405_names_the_allowed_methods(client):
    response = client.put(URL)
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}
    assert response.json["error"]["code"] == "method_not_allowed"


def test_a_body_shorter_than_its_declared_length_is_400_and_enqueues_nothing(client, redis_client):
    body = json.dumps(text_webhook("573001234567", "hola")).encode()
    response = client.post(
        URL,
        data=body,
        headers={SIGNATURE_HEADER: sign(body, SECRET)},
        content_type="application/json",
        environ_overrides={"CONTENT_LENGTH": str(len(body) + 10)},
    )
    assert response.status_code == 400
    assert response.json["error"]["code"] == "bad_request"
    assert inbound_depth(redis_client) == 0


def test_an_unexpected_failure_is_a_json_500_and_a_redis_failure_a_503(redis_client, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    from tasks.publish import TaskPublisher

    client = create_app({"SETTINGS": get_settings()}).test_client()
    body = json.dumps(text_webhook("573001234567", "Hola")).encode()

    def broken(*args, **kwargs):
        raise ValueError("a defect")

    monkeypatch.setattr(TaskPublisher, "publish_once", broken)
    response = post(client, body)
    assert response.status_code == 500
    assert response.json["error"]["code"] == "internal_server_error"

    def unreachable(*args, **kwargs):
        raise RedisConnectionError("Redis is gone")

    monkeypatch.setattr(TaskPublisher, "publish_once", unreachable)
    response = post(client, body)
    assert response.status_code == 503
    assert response.json["error"]["code"] == "redis_unavailable"
    assert response.headers["Retry-After"] == "5"
