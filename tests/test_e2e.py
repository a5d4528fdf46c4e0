"""The whole path as separate processes: a Redis of its own, the simulator, the web app under
gunicorn and a Celery worker, talking over real HTTP and the real broker."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import requests

from app import keys
from app.delivery.messages import READ, MessageStore
from tests.stack import (
    Process,
    RedisServer,
    free_port,
    gateway_env,
    signed_post,
    start_simulator,
    start_web,
    start_worker,
    text_webhook,
    wait_for,
)


@dataclass
class Stack:
    redis: RedisServer
    simulator: Process
    simulator_url: str
    web: Process
    web_url: str
    worker: Process

    @property
    def webhook_url(self) -> str:
        return f"{self.web_url}/webhooks/whatsapp"

    def sent(self) -> list[dict]:
        return requests.get(f"{self.simulator_url}/_sim/messages", timeout=5).json()["messages"]

    def replies_to(self, wamid: str) -> list[dict]:
        return [
            m["body"]
            for m in self.sent()
            if m["body"].get("context", {}).get("message_id") == wamid
        ]


@pytest.fixture(scope="module")
def stack():
    redis_server = RedisServer().start()
    sim_port, web_port = free_port(), free_port()
    # A short visibility timeout: a task cut off by the Redis restart comes back within the test.
    env = gateway_env(
        redis_server.url, f"http://127.0.0.1:{sim_port}", CELERY_VISIBILITY_TIMEOUT="20"
    )
    processes = []
    try:
        simulator, simulator_url = start_simulator(
            env, sim_port, f"http://127.0.0.1:{web_port}/webhooks/whatsapp"
        )
        processes.append(simulator)
        web, web_url = start_web(env, web_port)
        processes.append(web)
        worker = start_worker(env)
        processes.append(worker)
        yield Stack(redis_server, simulator, simulator_url, web, web_url, worker)
    finally:
        for proc in reversed(processes):
            proc.stop()
        redis_server.close()


def test_customer_hola_gets_a_reply_whose_status_reaches_read(stack):
    said = requests.post(
        f"{stack.simulator_url}/_sim/customers/573001234567/messages",
        json={"text": "Hola", "name": "Ana"},
        timeout=10,
    ).json()
    assert said["gateway_status"] == 200
    (reply,) = wait_for(lambda: stack.replies_to(said["wamid"]))
    assert reply["to"] == "573001234567"
    assert reply["type"] == "text" and "Hola Ana" in reply["text"]["body"]
    store = MessageStore(stack.redis.client())

    def reply_record():
        sent = [
            m
            for m in stack.sent()
            if m["body"].get("context", {}).get("message_id") == said["wamid"]
        ]
        message_id = store.id_for_wamid(sent[0]["wamid"])
        record = store.get(message_id)
        return record if record.status == READ else None

    record = wait_for(reply_record)
    assert [h["status"] for h in record.history if not h.get("ignored")] == [
        "queued",
        "sending",
        "sent",
        "delivered",
        "read",
    ]
    assert record.attempts == 1
    # Every webhook task (the message, then its reply's statuses) finished and left the journal.
    client = stack.redis.client()
    wait_for(
        lambda: client.hlen(keys.TASK_JOURNAL) == 0 and client.zcard(keys.TASK_JOURNAL_DUE) == 0
    )


def test_wrong_signature_is_401_and_nothing_is_enqueued(stack):
    payload = text_webhook("573009999999", "Hola")
    before = len(stack.sent())
    response = signed_post(stack.webhook_url, payload, secret="not-the-app-secret")
    assert response.status_code == 401
    assert stack.redis.client().llen("inbound") == 0
    unsigned = requests.post(stack.webhook_url, json=payload, timeout=5)
    assert unsigned.status_code == 401
    # A correctly signed message sent afterwards is answered, and it is the only new one.
    ok = text_webhook("573001111111", "Hola")
    assert signed_post(stack.webhook_url, ok).status_code == 200
    wait_for(lambda: stack.replies_to(ok["entry"][0]["changes"][0]["value"]["messages"][0]["id"]))
    assert len(stack.sent()) == before + 1
    assert not [m for m in stack.sent() if m["body"]["to"] == "573009999999"]


def test_same_webhook_three_times_produces_one_reply(stack):
    payload = text_webhook("573002222222", "Hola")
    wamid = payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    body = json.dumps(payload).encode()
    statuses = [signed_post(stack.webhook_url, body).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    wait_for(lambda: stack.replies_to(wamid))
    # The same message in a differently encoded body passes the receiver's digest check;
    # the worker's per-message claim still answers it once.
    reencoded = json.dumps(payload, indent=1).encode()
    assert signed_post(stack.webhook_url, reencoded).status_code == 200
    wait_for(lambda: "duplicates': ['" + wamid in stack.worker.output(), timeout=20)
    assert len(stack.replies_to(wamid)) == 1


def test_redis_down_gives_503_and_the_redelivery_is_processed(stack):
    payload = text_webhook("573003333333", "Hola")
    wamid = payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    body = json.dumps(payload).encode()
    stack.redis.stop()
    try:
        response = signed_post(stack.webhook_url, body)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "redis_unavailable"
        assert response.headers["Retry-After"]
    finally:
        stack.redis.start()
    # Meta redelivers the same body; the receiver and the worker recover on their own.
    response = wait_for(
        lambda: (r := signed_post(stack.webhook_url, body)).status_code == 200 and r,
        timeout=30,
        interval=1,
    )
    assert response.json() == {"status": "accepted"}
    (reply,) = wait_for(lambda: stack.replies_to(wamid), timeout=60)
    assert reply["to"] == "573003333333"
