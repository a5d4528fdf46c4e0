"""``wa-gateway dlq`` against the session's Redis."""

from __future__ import annotations

import json

import pytest

from app.cli import main
from app.delivery import dead_letters as dl
from app.delivery.dead_letters import DeadLetterStore
from app.delivery.messages import QUEUED, MessageStore

PAYLOAD = {
    "messaging_product": "whatsapp",
    "to": "573001234567",
    "type": "template",
    "template": {"name": "order_update", "language": {"code": "es"}},
}


@pytest.fixture
def letters(redis_client):
    store, dead_letters = MessageStore(redis_client), DeadLetterStore(redis_client)
    for message_id, reason, code in (
        ("m-permanent", dl.PERMANENT_ERROR, 131026),
        ("m-window", dl.WINDOW_CLOSED, 131047),
        ("m-poison", dl.POISON, None),
    ):
        store.create(message_id, PAYLOAD, "bulk")
        store.mark_sending(message_id, 1)
        dead_letters.add(store, message_id, reason, {"code": code, "title": "t"} if code else None)
    return store, dead_letters


def test_list_with_filters(letters, capsys):
    assert main(["dlq", "list"]) == 0
    out = capsys.readouterr().out
    assert "m-permanent" in out and "m-window" in out and "3 dead letters in all" in out
    assert main(["dlq", "list", "--reason", "window_closed", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["id"], r["code"]) for r in rows] == [("m-window", 131047)]
    assert main(["dlq", "list", "--code", "131026", "--json"]) == 0
    assert [json.loads(x)["id"] for x in capsys.readouterr().out.splitlines()] == ["m-permanent"]


def test_show(letters, capsys):
    assert main(["dlq", "show", "m-permanent"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["message"] == PAYLOAD and shown["reason"] == dl.PERMANENT_ERROR
    assert main(["dlq", "show", "nope"]) == 1


def test_replay_by_id_and_by_filter(letters, redis_client, capsys):
    store, dead_letters = letters
    assert main(["dlq", "replay", "m-poison"]) == 0
    assert store.get("m-poison").status == QUEUED
    assert redis_client.llen("send.bulk") == 1
    assert main(["dlq", "replay", "--reason", "window_closed"]) == 0
    assert "m-window" in capsys.readouterr().out
    assert sorted(dead_letters.ids()) == ["m-permanent"]
    assert main(["dlq", "replay", "nope"]) == 1


def test_replay_and_purge_need_a_clear_selection(letters):
    assert main(["dlq", "replay"]) == 2
    assert main(["dlq", "purge", "m-poison", "--all"]) == 2


def test_purge_by_filter_needs_yes(letters, capsys):
    _, dead_letters = letters
    assert main(["dlq", "purge", "--code", "131026"]) == 2
    assert "1 dead letters match" in capsys.readouterr().err
    assert len(dead_letters) == 3
    assert main(["dlq", "purge", "--code", "131026", "--yes"]) == 0
    assert main(["dlq", "purge", "m-poison"]) == 0
    assert dead_letters.ids() == ["m-window"]
    assert main(["dlq", "purge", "--all", "--yes"]) == 0
    assert len(dead_letters) == 0


def test_list_and_replay_by_direction(letters, redis_client, capsys):
    _, dead_letters = letters
    letter = dead_letters.add_inbound(
        "turn",
        dl.INTERNAL_ERROR,
        {"id": "wamid.t", "type": "text"},
        task="context.record_turn",
        payload={"id": "wamid.t", "type": "text"},
    )
    assert main(["dlq", "list", "--direction", "inbound", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["id"], r["kind"]) for r in rows] == [(letter.id, "turn")]
    assert main(["dlq", "replay", "--direction", "inbound"]) == 0
    assert letter.id in capsys.readouterr().out and redis_client.llen("context") == 1
    assert main(["dlq", "list", "--direction", "outbound", "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
