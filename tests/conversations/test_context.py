"""The conversation store against a real Redis: trimming, TTL, JSON, and concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest
import redis

from app import keys
from app.conversations.context import KEPT_AFTER_FOLD, MAX_EXCHANGES, ConversationStore
from tests.conversations.helpers import NUMBER, exchange, reply

pytestmark = pytest.mark.any_redis

WA_ID = "573001234567"


def test_a_record_is_json_with_a_day_to_live_renewed_on_activity(redis_client):
    store = ConversationStore(redis_client)
    assert store.record(NUMBER, WA_ID, exchange("wamid.1", "Hola"), text="Hola")
    key = keys.CONVERSATION.format(phone_number_id=NUMBER, wa_id=WA_ID)
    assert json.loads(redis_client.get(key))["exchanges"][0]["text"] == "Hola"
    redis_client.expire(key, 60)
    store.record(NUMBER, WA_ID, reply("r.1", "¡Hola!"))
    assert redis_client.ttl(key) > keys.CONVERSATION_TTL - 10
    profile_key = keys.PROFILE.format(phone_number_id=NUMBER, wa_id=WA_ID)
    assert json.loads(redis_client.get(profile_key))["message_count"] == 1


def test_the_same_message_recorded_twice_is_kept_once(redis_client):
    store = ConversationStore(redis_client)
    assert store.record(NUMBER, WA_ID, exchange("wamid.1", "Hola"), text="Hola")
    assert not store.record(NUMBER, WA_ID, exchange("wamid.1", "Hola"), text="Hola")
    assert len(store.get(NUMBER, WA_ID).exchanges) == 1
    assert store.profile(NUMBER, WA_ID).message_count == 1


def test_past_fifty_exchanges_the_oldest_fold_into_a_summary_and_thirty_stay(redis_client):
    store = ConversationStore(redis_client)
    for i in range(MAX_EXCHANGES):
        text = "¿Cuánto cuesta la camiseta roja?" if i == 3 else f"mensaje número {i}"
        store.record(NUMBER, WA_ID, exchange(f"wamid.{i}", text, age=1000 - i), text=text)
    conversation = store.get(NUMBER, WA_ID)
    assert len(conversation.exchanges) == MAX_EXCHANGES
    assert conversation.summary.exchanges == 0

    store.record(NUMBER, WA_ID, exchange("wamid.50", "una más"), text="una más")
    conversation = store.get(NUMBER, WA_ID)
    assert len(conversation.exchanges) == KEPT_AFTER_FOLD
    assert [e.id for e in conversation.exchanges][0] == "wamid.21"
    assert conversation.exchanges[-1].id == "wamid.50"
    assert conversation.summary.exchanges == 21
    assert conversation.total_exchanges == 51
    summary = conversation.summary.text()
    assert summary.startswith("21 earlier messages")
    assert "camiseta roja" in summary and "price" in summary


def _hammer(url: str, writer: int, count: int, start) -> None:
    client = redis.Redis.from_url(url, decode_responses=True)
    store = ConversationStore(client)
    client.ping()
    start.wait(30)  # both writers begin together, so their transactions overlap
    for i in range(count):
        text = f"writer {writer} message {i}"
        store.record(NUMBER, WA_ID, exchange(f"wamid.{writer}.{i}", text), text=text)


@pytest.mark.real_redis(reason="two processes share one store; fakeredis lives in one")
def test_concurrent_writers_lose_no_update(redis_client):
    """Two processes record the same customer's messages at the same time, as two context
    workers would: every message is counted and every exchange is either kept or summarised."""
    per_writer = 150
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    writers = [
        ctx.Process(target=_hammer, args=(os.environ["REDIS_URL"], n, per_writer, start))
        for n in range(2)
    ]
    for process in writers:
        process.start()
    start.set()
    for process in writers:
        process.join(timeout=120)
        assert process.exitcode == 0
    store = ConversationStore(redis_client)
    conversation = store.get(NUMBER, WA_ID)
    assert store.profile(NUMBER, WA_ID).message_count == 2 * per_writer
    assert conversation.total_exchanges == 2 * per_writer
    ids = {e.id for e in conversation.exchanges}
    assert len(ids) == len(conversation.exchanges)
