"""The ``/v1`` API as one blueprint: one place authenticates, every view declares its scope, and
an unavailable Redis gets one answer everywhere, the webhook included."""

from __future__ import annotations

import json

import pytest
from flask import Blueprint

from app.api_keys import SCOPES, ApiKeyRegistry
from app.config import get_settings
from app.web import auth, create_app
from app.whatsapp.signature import SIGNATURE_HEADER, sign
from tests.stack import TEST_CREDENTIALS, text_webhook

KEY = "gw-v1-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}


def make_app(settings=None):
    return create_app(
        {"SETTINGS": settings or get_settings(), "TESTING": True, "GATEWAY_API_KEYS": KEY}
    )


def test_every_v1_view_declares_a_known_scope(redis_client):
    app = make_app()
    v1_endpoints = [
        rule.endpoint for rule in app.url_map.iter_rules() if rule.rule.startswith("/v1/")
    ]
    assert len(v1_endpoints) >= 9
    for endpoint in v1_endpoints:
        assert endpoint.startswith("v1."), f"{endpoint} is outside the /v1 blueprint"
        scope = getattr(app.view_functions[endpoint], auth.SCOPE_ATTRIBUTE, None)
        assert scope in SCOPES, f"{endpoint} declares no known scope"


def test_a_view_without_a_scope_is_open_to_no_key(redis_client):
    app = make_app()
    forgotten = Blueprint("forgotten", __name__, url_prefix="/v1")
    forgotten.before_request(auth.authenticate)
    forgotten.add_url_rule("/forgotten", view_func=lambda: "secret")
    app.register_blueprint(forgotten)
    response = app.test_client().get("/v1/forgotten", headers=AUTH)
    assert response.status_code == 403
    assert response.json["error"]["code"] == "insufficient_scope"


def test_a_key_without_the_scope_is_403(redis_client):
    _, secret = ApiKeyRegistry(redis_client).create("alerts only", ["read"])
    headers = {"Authorization": f"Bearer {secret}"}
    client = make_app().test_client()
    assert client.get("/v1/alerts", headers=headers).status_code == 200
    refused = client.get("/v1/dead-letters", headers=headers)
    assert refused.status_code == 403
    assert refused.json["error"] == {
        "code": "insufficient_scope",
        "message": "this API key lacks the scope dead_letters",
    }


def signed_webhook() -> dict:
    body = json.dumps(text_webhook("573001234567", "Hola")).encode()
    secret = TEST_CREDENTIALS["WHATSAPP_WEBHOOK_SECRET"]
    return {
        "data": body,
        "headers": {SIGNATURE_HEADER: sign(body, secret)},
        "content_type": "application/json",
    }


@pytest.mark.parametrize(
    "method, path, request_kwargs",
    [
        ("post", "/webhooks/whatsapp", signed_webhook()),
        ("post", "/v1/messages", {"json": {"to": "573001234567", "type": "text"}}),
        ("get", "/v1/messages/abc", {}),
        ("get", "/v1/dead-letters", {}),
        ("post", "/v1/dead-letters/abc/replay", {}),
        ("get", "/v1/conversations/573001234567", {}),
        ("delete", "/v1/conversations/573001234567/handoff", {}),
        ("get", "/v1/alerts", {}),
    ],
)
def test_an_unavailable_redis_is_one_503_everywhere(method, path, request_kwargs):
    unreachable = get_settings().model_copy(
        update={"redis_url": "redis://:hunter2-secret@127.0.0.1:1/0"}
    )
    client = make_app(unreachable).test_client()
    request_kwargs = dict(request_kwargs)
    headers = {**AUTH, **request_kwargs.pop("headers", {})}
    response = getattr(client, method)(path, headers=headers, **request_kwargs)
    assert response.status_code == 503
    assert response.json == {
        "error": {"code": "redis_unavailable", "message": "Redis is unavailable; try again later"}
    }
    assert response.headers["Retry-After"] == "5"
    assert "hunter2" not in response.get_data(as_text=True)
