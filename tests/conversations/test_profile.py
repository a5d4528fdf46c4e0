"""Profiles learn from what customers write, in Spanish and in English."""

import pytest

from app.conversations.context import ConversationStore
from app.conversations.profile import DETAILED, QUICK, Profile, rating_in
from app.conversations.turns import CustomerTurn
from tests.conversations.helpers import NUMBER

pytestmark = pytest.mark.any_redis


def record(store: ConversationStore, wa_id: str, n: int, text: str, **extra) -> None:
    turn = CustomerTurn(
        id=f"wamid.{wa_id}.{n}", wa_id=wa_id, phone_number_id=NUMBER, type=extra.pop("type", "text"),
        at=1_700_000_000.0 + n, text=text, **extra,
    )  # fmt: skip
    store.record(
        NUMBER, wa_id, turn.exchange(), text=text, products=turn.products, choice_id=turn.choice_id
    )


def test_a_spanish_speaking_customer(redis_client):
    store = ConversationStore(redis_client)
    record(store, "573001111111", 1, "Hola, ¿cuánto cuesta la camiseta roja?")
    record(store, "573001111111", 2, "Respuesta corta por favor: ¿tienen envío a Cali?")
    record(store, "573001111111", 3, "El pedido llegó roto, quiero un reembolso")
    record(store, "573001111111", 4, "⭐⭐⭐⭐")
    profile = store.profile(NUMBER, "573001111111")
    assert profile.message_count == 4
    assert profile.language == "es"
    assert profile.preference == QUICK
    assert profile.last_interaction == 1_700_000_004.0
    assert {"price", "product", "order"} <= set(profile.interests)
    assert profile.complaints == 1
    assert [r["score"] for r in profile.ratings] == [4]


def test_an_english_speaking_customer(redis_client):
    store = ConversationStore(redis_client)
    record(store, "447700900123", 1, "Hi! Do you have the white sneakers in size 42?")
    record(store, "447700900123", 2, "Could you explain in detail how returns work?")
    record(
        store, "447700900123", 3, "Excellent", type="interactive",
        structured={"choice": {"kind": "button_reply", "id": "rating_5", "title": "Excellent"}},
    )  # fmt: skip
    record(store, "447700900123", 4, "3/5")
    profile = store.profile(NUMBER, "447700900123")
    assert profile.language == "en"
    assert profile.preference == DETAILED
    assert profile.interests["product"] == 1
    assert [r["score"] for r in profile.ratings] == [5, 3]
    assert profile.to_dict()["average_rating"] == 4.0


def test_only_the_last_ten_ratings_are_kept():
    profile = Profile()
    for n in range(12):
        profile.observe(text=f"{n % 5 + 1}/5", at=float(n), entity_kinds=[])
    assert len(profile.ratings) == 10
    assert profile.ratings[0]["at"] == 2.0


def test_plain_numbers_are_not_taken_for_ratings():
    assert rating_in("2") is None
    assert rating_in("tengo 2 pedidos") is None
    assert rating_in("5 estrellas") == 5
    assert rating_in("", "csat_2") == 2
