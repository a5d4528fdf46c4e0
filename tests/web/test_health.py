from __future__ import annotations

from app.config import get_settings
from app.web import create_app


def test_ready_when_redis_and_the_broker_answer(redis_client):
    client = create_app({"SETTINGS": get_settings(), "TESTING": True}).test_client()
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ready", "checks": {"redis": "ok", "broker": "ok"}}
    assert redis_client.exists("wa:ops:readyz")  # the broker took a write


def test_not_ready_names_the_failing_check_without_its_url(redis_client):
    unreachable = get_settings().model_copy(
        update={"redis_url": "redis://:hunter2-secret@127.0.0.1:1/0"}
    )
    client = create_app({"SETTINGS": unreachable, "TESTING": True}).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["status"] == "unavailable"
    assert response.json["checks"]["redis"] == "error: ConnectionError"
    assert response.headers["Retry-After"]
    assert "hunter2" not in response.get_data(as_text=True)
    assert client.get("/healthz").status_code == 200
