"""The issue's Loss and Leak findings with real processes: the web app under gunicorn, a Celery
worker, the simulator playing Meta, and a receiver of the worker's task events (what Flower
shows: args, kwargs, result, exception, traceback)."""

from __future__ import annotations

import json
import time

import pytest
import requests
from celery import Celery

from app.delivery.dead_letters import DeadLetterStore
from tests.stack import (
    RedisServer,
    TaskEvents,
    free_port,
    gateway_env,
    signed_post,
    start_simulator,
    start_web,
    start_worker,
    text_webhook,
    wait_for,
)

PHONE = "573009871234"
TEXT = "Mi dirección secreta es Calle Falsa 123"
HOSTILE_TEXT = "Otro texto privado del cliente"
SURROGATE_TEXT = "Hola \ud800 quiero ayuda privada"


@pytest.fixture(scope="module")
def stack():
    redis_server = RedisServer().start()
    sim_port, web_port = free_port(), free_port()
    env = gateway_env(redis_server.url, f"http://127.0.0.1:{sim_port}")
    processes, events = [], None
    try:
        simulator, sim_url = start_simulator(env, sim_port, None)
        processes.append(simulator)
        web, web_url = start_web(env, web_port)
        processes.append(web)
        events = TaskEvents(redis_server.url)
        time.sleep(1)  # the receiver binds its queue before the worker sends anything
        worker = start_worker(env, concurrency=1)
        processes.append(worker)
        # As Flower does: workers send task events only once someone asks for them.
        wait_for(lambda: events.app.control.enable_events(reply=True, timeout=1))
        yield redis_server, sim_url, web_url, worker, events
    finally:
        for proc in reversed(processes):
            proc.stop()
        if events is not None:
            events.close()
        redis_server.close()


def replies_to(sim_url: str, wamid: str) -> list[dict]:
    messages = requests.get(f"{sim_url}/_sim/messages", timeout=5).json()["messages"]
    return [m["body"] for m in messages if m["body"].get("context", {}).get("message_id") == wamid]


def hostile_webhook(timestamp: object) -> bytes:
    """A signed-able body: a message with ``timestamp`` written as is, then a good one."""
    payload = text_webhook(PHONE, TEXT)
    value = payload["entry"][0]["changes"][0]["value"]
    good = value["messages"][0]
    bad = {**good, "id": good["id"] + ".bad", "text": {"body": HOSTILE_TEXT}, "timestamp": 0}
    value["messages"] = [bad, good]
    return json.dumps(payload).replace('"timestamp": 0', f'"timestamp": {timestamp}').encode()


@pytest.mark.parametrize("timestamp", ["1e999", "9" * 4000])
def test_a_hostile_sibling_costs_its_good_sibling_nothing(stack, timestamp):
    redis_server, sim_url, web_url, _, _ = stack
    body = hostile_webhook(timestamp)
    good_id = json.loads(body)["entry"][0]["changes"][0]["value"]["messages"][1]["id"]
    assert signed_post(f"{web_url}/webhooks/whatsapp", body).status_code == 200
    (reply,) = wait_for(lambda: replies_to(sim_url, good_id), timeout=60)
    assert reply["to"] == PHONE
    letters = DeadLetterStore(redis_server.client()).list(direction="inbound")
    assert any(letter.message["id"] == good_id + ".bad" for letter in letters)


def test_a_lone_surrogate_is_answered(stack):
    _, sim_url, web_url, _, _ = stack
    payload = text_webhook(PHONE, SURROGATE_TEXT, wamid=f"wamid.surrogate.{time.time_ns()}")
    assert signed_post(f"{web_url}/webhooks/whatsapp", payload).status_code == 200
    assert wait_for(
        lambda: replies_to(
            sim_url, payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
        ),
        timeout=60,
    )


def test_a_turn_that_fails_is_dead_lettered_without_a_word_of_it_logged(stack):
    """A turn queued before the parse cleaned surrogates: recording it raised
    UnicodeEncodeError, whose repr (logged at ERROR, shown by Flower) held the conversation."""
    redis_server, _, _, worker, events = stack
    client = redis_server.client()
    turn = {
        "id": f"wamid.old.{time.time_ns()}",
        "wa_id": PHONE,
        "phone_number_id": "106540352242922",
        "type": "text",
        "at": time.time(),
        "text": SURROGATE_TEXT,
    }
    from tasks.publish import TaskPublisher  # noqa: PLC0415 - the test process's publisher

    publisher = TaskPublisher(Celery(broker=redis_server.url, set_as_current=False), client)
    publisher.publish("context.record_turn", [turn], queue="context", argsrepr="<text turn>")
    store = DeadLetterStore(client)
    (letter,) = wait_for(
        lambda: [x for x in store.list(direction="inbound") if x.message.get("id") == turn["id"]]
    )
    assert (letter.kind, letter.reason, letter.task) == (
        "turn",
        "internal_error",
        "context.record_turn",
    )
    assert letter.error["class"] == "UnicodeEncodeError"
    wait_for(lambda: "record_turn" in events.text() and "task-succeeded" in events.text())


def test_no_customer_text_or_full_phone_in_output_or_task_events(stack):
    """Runs last in this module: everything above has been through the worker."""
    _, _, web_url, worker, events = stack
    time.sleep(2)  # the last events and log lines
    seen = {"worker": worker.output(), "task events": events.text()}
    assert "task-received" in seen["task events"]
    for where, text in seen.items():
        for secret in (TEXT, HOSTILE_TEXT, "quiero ayuda privada", PHONE):
            assert secret not in text, f"{secret!r} in the {where}"
        assert "Traceback" not in text, where
    assert "dead-lettered" in seen["worker"]
