"""Each message and status of a webhook on its own: a hostile part is an inbound dead letter,
its good siblings are handed on, and a replay runs the part again."""

from __future__ import annotations

import copy
import json

import pytest

from app import keys
from app.conversations import inbound
from app.conversations.inbound import handle_webhook
from app.delivery import dead_letters as dl
from app.delivery.dead_letters import DeadLetterStore, inbound_id
from app.delivery.messages import MessageStore
from tests.stack import text_webhook

pytestmark = pytest.mark.any_redis

GOOD_PHONE = "573001234567"


def webhook_with(*hostile: dict, text: str = "Hola, ¿tienen la camiseta roja?") -> dict:
    """A webhook whose messages are the ``hostile`` ones and then a good one."""
    payload = text_webhook(GOOD_PHONE, text, wamid="wamid.good")
    value = payload["entry"][0]["changes"][0]["value"]
    good = value["messages"][0]
    value["messages"] = [{**copy.deepcopy(good), **h} for h in hostile] + [good]
    return payload


def deliver(redis_client, payload: dict) -> tuple[list[dict], inbound.InboundResult]:
    turns: list[dict] = []
    # Through JSON, as the worker receives it (1e999 and the like decode as the web decoded them).
    body = json.loads(json.dumps(payload))
    return turns, handle_webhook(body, redis_client=redis_client, enqueue_turn=turns.append)


@pytest.mark.parametrize(
    "hostile",
    [
        {"id": "wamid.inf", "timestamp": float("inf")},  # "timestamp": 1e999
        {"id": "wamid.digits", "timestamp": int("9" * 4000)},
        {"id": "wamid.digits-text", "timestamp": "9" * 4000},
        {"id": "wamid.nan", "timestamp": float("nan")},
        {"id": ["wamid.list"]},
        {"id": "wamid.from", "from": {"phone": GOOD_PHONE}},
        {"id": "wamid.type", "type": 7},
    ],
    ids=["1e999", "4000-digits", "4000-digit-string", "nan", "list-id", "dict-from", "int-type"],
)
def test_a_malformed_message_is_dead_lettered_and_its_sibling_answered(redis_client, hostile):
    turns, result = deliver(redis_client, webhook_with(hostile))
    assert [t["id"] for t in turns] == ["wamid.good"]
    (letter_id,) = result.dead_lettered
    letter = DeadLetterStore(redis_client).get(letter_id)
    assert (letter.direction, letter.kind, letter.reason) == ("inbound", "message", dl.MALFORMED)
    assert letter.task == "inbound.process_webhook"
    # The webhook it came in, with that part alone, is what a replay runs.
    (part,) = letter.payload["entry"][0]["changes"][0]["value"]["messages"]
    assert part == letter.message and part["id"] == json.loads(json.dumps(hostile))["id"]


def test_a_lone_surrogate_becomes_a_replacement_character(redis_client):
    turns, result = deliver(redis_client, webhook_with(text="hola \ud800 amigo"))
    assert turns[0]["text"] == "hola \ufffd amigo" and not result.dead_lettered
    turns[0]["text"].encode("utf-8")  # what Redis does with it


def test_a_message_that_fails_unexpectedly_is_dead_lettered_alone(redis_client, monkeypatch):
    real = inbound.describe

    def describe(message, customer):
        if message.id == "wamid.boom":
            raise KeyError("Hola, texto del cliente")
        return real(message, customer)

    monkeypatch.setattr(inbound, "describe", describe)
    turns, result = deliver(redis_client, webhook_with({"id": "wamid.boom"}))
    assert [t["id"] for t in turns] == ["wamid.good"]
    letter = DeadLetterStore(redis_client).get(result.dead_lettered[0])
    assert letter.reason == dl.INTERNAL_ERROR and letter.error["class"] == "KeyError"
    assert letter.error["where"].startswith("test_isolation.py:")
    # Handled: a redelivery of the webhook does not dead-letter it twice ...
    assert deliver(redis_client, webhook_with({"id": "wamid.boom"}))[1].duplicates
    # ... and a replay releases it and runs it again.
    monkeypatch.setattr(inbound, "describe", real)
    replayed = []
    store = DeadLetterStore(redis_client)
    assert store.replay(
        MessageStore(redis_client), letter.id, None, lambda t, a: replayed.append((t, a))
    )
    assert letter.id not in store
    ((task, webhook),) = replayed
    turns, result = deliver(redis_client, webhook)
    assert task == "inbound.process_webhook" and [t["id"] for t in turns] == ["wamid.boom"]


def test_a_malformed_status_is_dead_lettered_and_the_others_applied(redis_client):
    payload = text_webhook(GOOD_PHONE, "x", wamid="wamid.x")
    value = payload["entry"][0]["changes"][0]["value"]
    value.pop("messages")
    value["statuses"] = [
        {"id": "wamid.s1", "status": "delivered", "timestamp": 1e999, "recipient_id": GOOD_PHONE},
        {"id": "wamid.s2", "status": "delivered", "timestamp": "1", "recipient_id": GOOD_PHONE},
    ]
    _, result = deliver(redis_client, payload)
    assert result.statuses_applied + result.statuses_ignored == 1
    letter = DeadLetterStore(redis_client).get(result.dead_lettered[0])
    assert letter.kind == "status" and letter.message["id"] == "wamid.s1"


def test_the_same_part_again_keeps_one_entry(redis_client):
    hostile = {"id": "wamid.inf", "timestamp": float("inf")}
    for _ in range(2):
        redis_client.delete(keys.INBOUND_MESSAGE.format(wamid="wamid.good"))
        _, result = deliver(redis_client, webhook_with(hostile))
    store = DeadLetterStore(redis_client)
    assert len(store) == 1 and store.get(result.dead_lettered[0]).attempts == 2


def test_inbound_and_outbound_letters_are_listed_apart(redis_client):
    deliver(redis_client, webhook_with({"id": "wamid.inf", "timestamp": float("inf")}))
    store, messages = DeadLetterStore(redis_client), MessageStore(redis_client)
    messages.create("m1", {"to": GOOD_PHONE, "type": "text", "text": {"body": "x"}}, "normal")
    store.add(messages, "m1", dl.PERMANENT_ERROR, {"code": 131026})
    assert [letter.id for letter in store.list(direction="outbound")] == ["m1"]
    (letter,) = store.list(direction="inbound")
    assert letter.summary()["direction"] == "inbound" and letter.summary()["kind"] == "message"
    assert store.purge(direction="inbound") == 1 and len(store) == 1
    assert inbound_id("message", {"a": 1}) == inbound_id("message", {"a": 1})
