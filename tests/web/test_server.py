"""The web process as the Procfile serves it: a real gunicorn on a Redis of the module's own."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest
import requests

from app.web.body import MAX_WEBHOOK_BYTES
from app.web.messages import MAX_MESSAGE_BYTES
from app.whatsapp.signature import SIGNATURE_HEADER, sign
from tests.stack import (
    TEST_CREDENTIALS,
    RedisServer,
    free_port,
    gateway_env,
    start_web,
    text_webhook,
)

API_KEY = "api-key-for-server-tests-0123456789"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    redis_server = RedisServer(appendonly=False).start()
    yield redis_server.url
    redis_server.close()


@pytest.fixture(scope="module")
def web(redis_url) -> Iterator[str]:
    env = gateway_env(redis_url, "http://127.0.0.1:9", GATEWAY_API_KEYS=API_KEY)
    proc, url = start_web(env)
    try:
        yield url
    finally:
        proc.stop()


def chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """``body`` as a generator, so requests sends it chunked, with no Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def padded_webhook(total: int) -> bytes:
    """A signed-able webhook of exactly ``total`` bytes (JSON whitespace pads it)."""
    body = json.dumps(text_webhook("573001234567", "hola")).encode()
    return body[:-1] + b" " * (total - len(body)) + b"}"


def post_chunked(url: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(url, data=chunks(body), headers=headers, timeout=30)


def webhook_headers(body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(body, TEST_CREDENTIALS["WHATSAPP_WEBHOOK_SECRET"]),
    }


def test_a_chunked_webhook_up_to_the_limit_is_accepted(web):
    body = padded_webhook(MAX_WEBHOOK_BYTES)
    response = post_chunked(f"{web}/webhooks/whatsapp", body, webhook_headers(body))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "accepted"


def test_a_chunked_webhook_past_the_limit_is_413_not_a_signature_failure(web):
    body = padded_webhook(MAX_WEBHOOK_BYTES + 1)
    response = post_chunked(f"{web}/webhooks/whatsapp", body, webhook_headers(body))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_a_chunked_message_past_its_limit_is_413(web):
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    response = post_chunked(f"{web}/v1/messages", b" " * (MAX_MESSAGE_BYTES + 1), headers)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_with_a_metrics_port_gunicorn_serves_metrics_there_only(redis_url):
    metrics_port = free_port()
    env = gateway_env(redis_url, "http://127.0.0.1:9", METRICS_PORT=str(metrics_port))
    proc, url = start_web(env)
    try:
        metrics_url = f"http://127.0.0.1:{metrics_port}"
        assert requests.get(f"{metrics_url}/metrics", timeout=5).status_code == 200
        assert requests.get(f"{url}/metrics", timeout=5).status_code == 404
        assert requests.get(f"{metrics_url}/healthz", timeout=5).status_code == 404
    finally:
        proc.stop()


def test_clients_trickling_their_headers_do_not_hold_the_server(web):
    """Each slow connection sends part of a request's headers and stays open: with threads, 50
    of them held every thread and /healthz went unanswered."""
    port = int(web.rsplit(":", 1)[1])
    slow = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(50)]
    try:
        for sock in slow:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")
        time.sleep(1)  # the server has read them all and waits for the rest
        for sock in slow:
            sock.sendall(b"a")
        for _ in range(10):
            assert requests.get(f"{web}/healthz", timeout=5).status_code == 200
        body = json.dumps(text_webhook("573001234567", "hola")).encode()
        response = requests.post(
            f"{web}/webhooks/whatsapp", data=body, headers=webhook_headers(body), timeout=5
        )
        assert response.status_code == 200
    finally:
        for sock in slow:
            sock.close()
