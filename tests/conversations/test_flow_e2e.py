"""The conversation flow as separate processes: Meta's webhook examples (and the media types
they lack) posted to the web app under gunicorn, two Celery workers on the inbound, context and
send queues, and the simulator playing Meta; checked through the simulator and the /v1 API."""

from __future__ import annotations

import copy
import threading
import time

import pytest
import requests

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

API_KEY = "e2e-api-key-0123456789"
SILENT = {"Reaction Message", "Unsupported Message", "System Message"}
"""Examples recorded without a reply."""


class Stack:
    def __init__(self, redis_server, simulator_url, web_url):
        self.redis = redis_server
        self.simulator_url = simulator_url
        self.web_url = web_url

    def post(self, payload: dict) -> int:
        return signed_post(f"{self.web_url}/webhooks/whatsapp", payload).status_code

    def simulator(self) -> dict:
        return requests.get(f"{self.simulator_url}/_sim/messages", timeout=5).json()

    def replies_to(self, wamid: str) -> list[dict]:
        return [
            m["body"]
            for m in self.simulator()["messages"]
            if m["body"].get("context", {}).get("message_id") == wamid
        ]

    def conversation(self, wa_id: str) -> dict | None:
        response = requests.get(
            f"{self.web_url}/v1/conversations/{wa_id}",
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=5,
        )
        return response.json() if response.status_code == 200 else None

    def handoff(self, method: str, wa_id: str) -> int:
        return requests.request(
            method,
            f"{self.web_url}/v1/conversations/{wa_id}/handoff",
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=5,
        ).status_code


@pytest.fixture(scope="module")
def stack():
    redis_server = RedisServer().start()
    sim_port, web_port = free_port(), free_port()
    env = gateway_env(redis_server.url, f"http://127.0.0.1:{sim_port}", GATEWAY_API_KEYS=API_KEY)
    processes = []
    try:
        simulator, simulator_url = start_simulator(
            env, sim_port, f"http://127.0.0.1:{web_port}/webhooks/whatsapp"
        )
        processes.append(simulator)
        web, web_url = start_web(env, web_port)
        processes.append(web)
        for name in ("worker-a", "worker-b"):  # two workers, so a customer's turns can race
            processes.append(start_worker(env, name=name))
        yield Stack(redis_server, simulator_url, web_url)
    finally:
        for proc in reversed(processes):
            proc.stop()
        redis_server.close()


def as_customer(example: dict, wa_id: str, index: int) -> tuple[dict, str | None]:
    """Meta's example, re-addressed: this customer, a fresh message id, the current time."""
    payload = copy.deepcopy(example)
    value = payload["entry"][0]["changes"][0]["value"]
    messages = value.get("messages") or []
    for contact in value.get("contacts") or []:
        contact["wa_id"] = wa_id
    for message in messages:
        message["from"] = wa_id
        message["id"] = f"wamid.e2e.{index}.{time.time_ns()}"
        message["timestamp"] = str(int(time.time()))
    return payload, (messages[0]["id"] if messages else None)


def media_example(kind: str, content: dict) -> dict:
    payload = text_webhook("0", "x")
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message.pop("text")
    message.update({"type": kind, kind: content})
    return payload


MEDIA = {
    "Audio Message": ("audio", {"mime_type": "audio/ogg; codecs=opus", "id": "111", "voice": True}),
    "Video Message": ("video", {"mime_type": "video/mp4", "id": "222", "caption": "Unboxing"}),
    "Document Message": (
        "document",
        {"mime_type": "application/pdf", "id": "333", "filename": "factura.pdf"},
    ),
    "Sticker Message": ("sticker", {"mime_type": "image/webp", "id": "444", "animated": False}),
}


def test_every_inbound_type_end_to_end(stack, webhook_examples):
    examples = dict(webhook_examples)
    for name, (kind, content) in MEDIA.items():
        examples[name] = media_example(kind, content)
    sent = {}
    for index, (name, example) in enumerate(sorted(examples.items())):
        wa_id = f"16505{index:06d}"
        payload, wamid = as_customer(example, wa_id, index)
        assert stack.post(payload) == 200, name
        sent[name] = (wa_id, wamid)

    for name, (wa_id, wamid) in sent.items():
        if wamid is None:  # group lifecycle and settings changes are not conversation turns
            continue
        if name in SILENT:
            continue
        (reply,) = wait_for(lambda w=wamid: stack.replies_to(w), timeout=60)
        assert reply["to"] == wa_id and reply["text"]["body"], name
        conversation = wait_for(lambda w=wa_id: stack.conversation(w), timeout=30)
        roles = wait_for(
            lambda w=wa_id: (
                len((stack.conversation(w) or {})["context"]["exchanges"]) == 2
                and [e["role"] for e in stack.conversation(w)["context"]["exchanges"]]
            ),
            timeout=30,
        )
        assert roles == ["customer", "business"], name
        assert conversation["window"]["open"] is True

    for name in SILENT:
        wa_id, wamid = sent[name]
        conversation = wait_for(lambda w=wa_id: stack.conversation(w), timeout=30)
        (recorded,) = conversation["context"]["exchanges"]
        assert recorded["id"] == wamid
        assert not stack.replies_to(wamid), name

    # Structured input and descriptions reached the context as the responder saw them.
    described = {
        name: stack.conversation(sent[name][0])["context"]["exchanges"][0]
        for name in sent
        if sent[name][1]
    }
    assert described["Location Message"]["text"].startswith("[location] Philz Coffee")
    assert described["Contact Sharing Message"]["data"]["contacts"][0]["name"] == "Lucía Gómez"
    assert described["Interactive Button Reply Message"]["data"]["choice"]["id"] == "cancel-button"
    assert described["Button Message"]["data"]["choice"]["kind"] == "template_button"
    assert described["Image Message"]["text"] == "[image: image/jpeg] Taj Mahal"
    assert described["Document Message"]["text"] == "[document: factura.pdf, application/pdf]"
    assert described["Order Message"]["data"]["order"]["items"][0]["quantity"] == 2
    assert described["Reaction Message"]["data"]["reaction"]["emoji"] == "👍"
    assert described["Text Message with Context (Product Inquiry)"]["data"]["referred_product"]

    # Read receipts: with the typing indicator where a reply follows, none for reactions/system.
    receipts = {r["message_id"]: r for r in stack.simulator()["read_receipts"]}
    assert receipts[sent["Text Message"][1]]["typing_indicator"] == {"type": "text"}
    assert "typing_indicator" not in receipts[sent["Unsupported Message"][1]]
    assert sent["Reaction Message"][1] not in receipts
    assert sent["System Message"][1] not in receipts


def test_messages_from_one_customer_processed_at_once_are_all_kept(stack):
    wa_id = "573005550000"
    payloads = [text_webhook(wa_id, f"Pregunta número {n} sobre la camiseta") for n in range(12)]
    threads = [threading.Thread(target=stack.post, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wamids = [p["entry"][0]["changes"][0]["value"]["messages"][0]["id"] for p in payloads]

    def settled():
        conversation = stack.conversation(wa_id)
        exchanges = conversation["context"]["exchanges"] if conversation else []
        return len(exchanges) == 24 and conversation

    conversation = wait_for(settled, timeout=90)
    customer = {e["id"] for e in conversation["context"]["exchanges"] if e["role"] == "customer"}
    assert customer == set(wamids)
    assert conversation["profile"]["message_count"] == 12


def test_an_operator_handoff_silences_replies_until_it_ends(stack):
    wa_id = "573006660000"
    assert stack.handoff("POST", wa_id) == 201
    quiet = text_webhook(wa_id, "Hola")
    assert stack.post(quiet) == 200
    quiet_id = quiet["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    wait_for(lambda: stack.conversation(wa_id)["context"], timeout=30)
    assert stack.handoff("DELETE", wa_id) == 200
    loud = text_webhook(wa_id, "Hola otra vez")
    assert stack.post(loud) == 200
    loud_id = loud["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    (reply,) = wait_for(lambda: stack.replies_to(loud_id), timeout=60)
    assert "Hola" in reply["text"]["body"]
    assert stack.replies_to(quiet_id) == []


def test_the_run_command_demo_answers_its_follow_up_in_context(stack, capsys):
    from app.devstack import play_demo

    assert play_demo(stack.web_url, stack.simulator_url, timeout=90)
    lines = [line for line in capsys.readouterr().out.splitlines() if "gateway replies" in line]
    assert len(lines) == 3
    assert "Hola Ana" in lines[0]
    assert "La camiseta roja cuesta 25 USD" in lines[1]
    assert "La camiseta roja llega en 1 a 2 días hábiles" in lines[2]
