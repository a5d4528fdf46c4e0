from __future__ import annotations

import pytest

from app.config import get_settings
from app.ops.alerts import AlertEvaluator, AlertThresholds
from app.ops.state import DeploymentState
from app.web import create_app

KEY = "api-key-for-tests-0123456789"


@pytest.fixture
def client(redis_client, monkeypatch):
    monkeypatch.setenv("GATEWAY_API_KEYS", f"other-key-abcdefghijkl,{KEY}")
    return create_app({"SETTINGS": get_settings(), "TESTING": True}).test_client()


def auth(key: str = KEY) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    "headers",
    [{}, auth("wrong-key"), {"Authorization": f"Basic {KEY}"}, {"Authorization": KEY}, auth("")],
)
def test_without_a_valid_api_key_it_is_401(client, headers):
    response = client.get("/v1/alerts", headers=headers)
    assert response.status_code == 401
    assert response.json["error"]["code"] in ("missing_api_key", "invalid_api_key")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_with_no_keys_configured_the_api_is_closed(redis_client, monkeypatch):
    monkeypatch.setenv("GATEWAY_API_KEYS", "")
    client = create_app({"SETTINGS": get_settings(), "TESTING": True}).test_client()
    assert client.get("/v1/alerts", headers=auth()).status_code == 401


def test_history_and_firing_alerts_newest_first(client, redis_client):
    evaluator = AlertEvaluator(redis_client, AlertThresholds(), [], deployment="prod")
    base = dict(
        unacked=0, active_conversations=0, dead_letters=None, heartbeat_ages={}, window_seconds=300
    )
    evaluator.evaluate(DeploymentState(at=1.0, queue_sizes={"inbound": 5000}, **base))
    evaluator.evaluate(
        DeploymentState(
            at=2.0, queue_sizes={"inbound": 0}, window={"signature_failures": 50.0}, **base
        )
    )
    body = client.get("/v1/alerts", headers=auth()).json
    assert [(h["name"], h["status"]) for h in body["history"]] == [
        ("signature_failures", "firing"),
        ("queue_backlog", "resolved"),
        ("queue_backlog", "firing"),
    ]
    assert [(f["name"], f["since"]) for f in body["firing"]] == [("signature_failures", 2.0)]
    limited = client.get("/v1/alerts?limit=1", headers=auth("other-key-abcdefghijkl")).json
    assert len(limited["history"]) == 1


@pytest.mark.parametrize(
    "limit",
    ["0", "1001", "-1", "ten", "1.5", "", "²", "١٢", "1e3", "true", "+1", " 1", "1_000", "9" * 40],
)
def test_a_bad_limit_is_400(client, limit):
    response = client.get(f"/v1/alerts?limit={limit}", headers=auth())
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_parameter"
    assert response.json["error"]["field"] == "limit"
