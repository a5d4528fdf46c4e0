from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.config import get_settings
from app.delivery.messages import MessageStore
from app.web import create_app


@pytest.fixture
def client(redis_client):
    return create_app({"SETTINGS": get_settings(), "TESTING": True}).test_client()


def test_metrics_are_prometheus_text_with_process_and_state_metrics(client, redis_client):
    redis_client.rpush("inbound\x06\x163", "task")  # a priority sub-list counts
    MessageStore(redis_client).create("m1", {"to": "573001234567"}, "high")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    families = {f.name: f for f in text_string_to_metric_families(response.get_data(as_text=True))}
    for name in (
        "whatsapp_messages_sent",
        "whatsapp_messages_received",
        "whatsapp_api_errors",
        "whatsapp_message_processing_seconds",
        "whatsapp_ai_response_seconds",
        "whatsapp_webhook_signature_failures",
        "whatsapp_rate_limit_deferrals",
        "whatsapp_retries",
        "whatsapp_active_conversations",
        "whatsapp_message_queue_size",
    ):
        assert name in families
    queues = {s.labels["queue"]: s.value for s in families["whatsapp_message_queue_size"].samples}
    assert queues == {
        "inbound": 1,
        "context": 0,
        "send.high": 1,  # a message, whatever its tasks
        "send.normal": 0,
        "send.bulk": 0,
        "alerts": 0,
        "events": 0,
    }


def test_a_bad_signature_moves_its_counter(client):
    def failures() -> float:
        text = client.get("/metrics").get_data(as_text=True)
        (line,) = [
            ln
            for ln in text.splitlines()
            if ln.startswith("whatsapp_webhook_signature_failures_total")
        ]
        return float(line.split()[-1])

    before = failures()
    response = client.post("/webhooks/whatsapp", data=b"{}", content_type="application/json")
    assert response.status_code == 401
    assert failures() == before + 1


def test_metrics_require_the_bearer_token_when_one_is_set(redis_client, monkeypatch):
    monkeypatch.setenv("METRICS_BEARER_TOKEN", "scrape-token-0123456789")
    client = create_app({"SETTINGS": get_settings(), "TESTING": True}).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-token-0123456789"})
    assert ok.status_code == 200


def test_with_a_metrics_port_metrics_are_served_there_and_nothing_else_is(
    redis_client, monkeypatch
):
    monkeypatch.setenv("METRICS_PORT", "9464")
    client = create_app({"SETTINGS": get_settings(), "TESTING": True}).test_client()
    on_metrics_port = {"SERVER_PORT": "9464"}
    assert client.get("/metrics", environ_overrides=on_metrics_port).status_code == 200
    assert client.get("/metrics", environ_overrides={"SERVER_PORT": "8000"}).status_code == 404
    assert client.get("/metrics", headers={"Host": "localhost:9464"}).status_code == 404
    assert client.get("/healthz", environ_overrides={"SERVER_PORT": "8000"}).status_code == 200
    assert client.get("/healthz", environ_overrides=on_metrics_port).status_code == 404
    assert client.get("/v1/alerts", environ_overrides=on_metrics_port).status_code == 404
