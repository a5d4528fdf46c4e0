"""Events and the handoff as separate processes: the web app under gunicorn, Celery workers on
the conversation, send, events and alerts queues, the simulator playing Meta, and a receiver
HTTP server of the test's own standing for the business's systems (and its alert webhook)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from app.credentials import generate_key
from app.events.delivery import verify_signature
from tests.stack import (
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

API_KEY = "events-e2e-api-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
MAX_ATTEMPTS = 3


class Receiver(ThreadingHTTPServer):
    """The business's endpoint: keeps every request, answers ``status``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.status = 200
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def events(self, event_type: str | None = None) -> list[tuple[dict, dict, bytes]]:
        """(event, headers, body) of every event POSTed to /events, oldest first."""
        with self.lock:
            found = [(json.loads(b), h, b) for p, h, b in self.requests if p == "/events"]
        return [e for e in found if event_type is None or e[0]["type"] == event_type]

    def alerts(self) -> list[dict]:
        with self.lock:
            return [json.loads(b) for p, _, b in self.requests if p == "/alerts"]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            self.server.requests.append((self.path, dict(self.headers), body))
        self.send_response(self.server.status if self.path == "/events" else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


class Stack:
    def __init__(self, web_url: str, simulator_url: str, receiver: Receiver):
        self.web_url = web_url
        self.simulator_url = simulator_url
        self.receiver = receiver

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, self.web_url + path, headers=AUTH, timeout=10, **kwargs)

    def say(self, wa_id: str, text: str) -> str:
        payload = text_webhook(wa_id, text)
        assert signed_post(f"{self.web_url}/webhooks/whatsapp", payload).status_code == 200
        return payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]

    def subscribe(self, events: list[str]) -> dict:
        response = self.api(
            "post",
            "/v1/event-subscriptions",
            json={"url": self.receiver.url + "/events", "events": events},
        )
        assert response.status_code == 201, response.text
        return response.json()


@pytest.fixture(scope="module")
def stack():
    redis_server = RedisServer().start()
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    sim_port, web_port = free_port(), free_port()
    env = gateway_env(
        redis_server.url,
        f"http://127.0.0.1:{sim_port}",
        GATEWAY_API_KEYS=API_KEY,
        GATEWAY_ENCRYPTION_KEYS=generate_key(),
        EVENT_ALLOW_PRIVATE_URLS="true",  # the receiver listens on 127.0.0.1
        EVENT_MAX_ATTEMPTS=str(MAX_ATTEMPTS),
        EVENT_RETRY_BASE_DELAY="0.2",
        ALERT_WEBHOOK_URL=receiver.url + "/alerts",
    )
    processes = []
    try:
        simulator, simulator_url = start_simulator(
            env, sim_port, f"http://127.0.0.1:{web_port}/webhooks/whatsapp"
        )
        processes.append(simulator)
        web, web_url = start_web(env, web_port)
        processes.append(web)
        processes.append(start_worker(env, name="pipeline"))
        processes.append(start_worker(env, queues="events,alerts", name="events"))
        yield Stack(web_url, simulator_url, receiver)
    finally:
        for proc in reversed(processes):
            proc.stop()
        receiver.shutdown()
        receiver.server_close()
        redis_server.close()


@pytest.fixture
def subscription(stack):
    stack.receiver.status = 200
    created = stack.subscribe(
        ["message.received", "message.status", "conversation.handoff", "dead_letter.created"]
    )
    yield created
    stack.api("delete", f"/v1/event-subscriptions/{created['id']}")


def test_a_handoff_is_announced_listed_and_answered_by_an_agent(stack, subscription):
    wa_id = "573001110001"
    asked = stack.say(wa_id, "Quiero hablar con un asesor")

    # The business hears of the message and of the handoff, each signed with its secret.
    handoff, headers, body = wait_for(lambda: stack.receiver.events("conversation.handoff"))[0]
    received = [e for e, _, _ in stack.receiver.events("message.received")]
    assert [e["data"]["message_id"] for e in received] == [asked]
    assert received[0]["data"]["text"] == "Quiero hablar con un asesor"
    assert headers["X-Wa-Gateway-Event"] == "conversation.handoff"
    assert verify_signature(subscription["secret"], headers["X-Wa-Gateway-Signature"], body)
    assert not verify_signature("whsec_wrong", headers["X-Wa-Gateway-Signature"], body)
    assert handoff["data"] | {"since": None} == {
        "phone_number_id": handoff["data"]["phone_number_id"],
        "customer": wa_id,
        "active": True,
        "since": None,
        "by": "customer",
        "reason": None,
        "message_id": asked,
    }
    # In order within the conversation: the message, then the handoff it started.
    assert received[0]["conversation"] == {"id": wa_id, "sequence": 1}
    assert handoff["conversation"] == {"id": wa_id, "sequence": 2}

    # The alert channels are told which conversation needs a person.
    notice = wait_for(stack.receiver.alerts)[0]
    assert notice["name"] == "conversation_handoff" and wa_id in notice["summary"]

    listed = stack.api("get", "/v1/conversations?handoff=active").json()["conversations"]
    assert [(c["wa_id"], c["handoff"]["by"]) for c in listed] == [(wa_id, "customer")]

    # An agent answers: sent on the high lane to Meta, recorded as an agent turn.
    answer = stack.api(
        "post",
        f"/v1/conversations/{wa_id}/messages",
        json={"text": "Soy Ana, ¿en qué te ayudo?", "agent": "Ana"},
    )
    assert answer.status_code == 202, answer.text
    message_id = answer.json()["id"]

    def sent_to_meta():
        messages = requests.get(f"{stack.simulator_url}/_sim/messages", timeout=5).json()
        return [
            m
            for m in messages["messages"]
            if m["body"].get("text", {}).get("body", "").startswith("Soy Ana")
        ]

    assert wait_for(sent_to_meta)[0]["body"]["to"] == wa_id
    record = stack.api("get", f"/v1/messages/{message_id}").json()
    assert record["priority"] == "high"

    def agent_turn():
        context = stack.api("get", f"/v1/conversations/{wa_id}").json()["context"]
        return [x for x in context["exchanges"] if x["id"] == message_id]

    assert wait_for(agent_turn)[0]["data"] == {"source": "agent", "agent": "Ana"}

    # Meta's statuses of the agent's message reach the business too.
    statuses = wait_for(
        lambda: (
            {
                e["data"]["status"]
                for e, _, _ in stack.receiver.events("message.status")
                if e["data"]["message_id"] == message_id
            }
            >= {"sent", "delivered"}
        )
    )
    assert statuses

    # Ending the handoff takes it off the list.
    assert stack.api("delete", f"/v1/conversations/{wa_id}/handoff").status_code == 200
    assert stack.api("get", "/v1/conversations?handoff=active").json()["conversations"] == []


def test_an_agent_cannot_answer_once_the_window_closed(stack):
    answer = stack.api("post", "/v1/conversations/573001110009/messages", json={"text": "Hola"})
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "window_closed"


def test_a_failing_receiver_gets_retries_then_a_dead_letter_that_replays(stack):
    stack.receiver.status = 500
    created = stack.subscribe(["message.received"])
    try:
        asked = stack.say("573001110002", "Hola, ¿tienen envíos?")

        def dead_letter():
            letters = stack.api("get", "/v1/dead-letters?direction=event").json()["dead_letters"]
            return [d for d in letters if d["kind"] == "event"]

        (summary,) = wait_for(dead_letter, timeout=60)
        attempts = [
            e
            for e, _, _ in stack.receiver.events("message.received")
            if e["data"]["message_id"] == asked
        ]
        assert len(attempts) == MAX_ATTEMPTS
        assert len({e["id"] for e in attempts}) == 1  # one event, the same id every time
        letter = stack.api("get", f"/v1/dead-letters/{summary['id']}").json()
        assert letter["reason"] == "retries_exhausted" and letter["attempts"] == MAX_ATTEMPTS
        assert letter["error"]["code"] == 500
        assert letter["message"]["id"] == attempts[0]["id"]

        # The receiver is fixed; the operator replays the dead letter.
        stack.receiver.status = 200
        assert stack.api("post", f"/v1/dead-letters/{summary['id']}/replay").status_code == 202
        wait_for(
            lambda: (
                len(
                    [
                        e
                        for e, _, _ in stack.receiver.events("message.received")
                        if e["id"] == attempts[0]["id"]
                    ]
                )
                == MAX_ATTEMPTS + 1
            )
        )
        _, headers, body = stack.receiver.events("message.received")[-1]
        assert verify_signature(created["secret"], headers["X-Wa-Gateway-Signature"], body)
        assert stack.api("get", f"/v1/dead-letters/{summary['id']}").status_code == 404
    finally:
        stack.receiver.status = 200
        stack.api("delete", f"/v1/event-subscriptions/{created['id']}")
