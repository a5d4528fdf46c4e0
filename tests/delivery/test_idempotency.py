from __future__ import annotations

import pytest

from app import keys
from app.delivery.idempotency import (
    IdempotencyConflict,
    IdempotencyInProgress,
    IdempotencyStore,
    body_digest,
)

pytestmark = pytest.mark.any_redis


@pytest.fixture
def store(redis_client):
    return IdempotencyStore(redis_client)


def test_digest_ignores_key_order_and_whitespace_but_not_values():
    assert body_digest({"a": 1, "b": [1, 2]}) == body_digest({"b": [1, 2], "a": 1})
    assert body_digest({"a": 1}) != body_digest({"a": 2})


def test_first_claim_wins_and_a_finished_repeat_gets_the_same_ids(store, redis_client):
    assert store.claim("order-1", "d1", ["m1"]) is None
    with pytest.raises(IdempotencyInProgress):
        store.claim("order-1", "d1", ["m2"])
    store.complete("order-1", "d1", ["m1"])
    assert store.claim("order-1", "d1", ["m3"]).ids == ["m1"]
    assert redis_client.ttl(store.key("order-1")) > keys.IDEMPOTENCY_PENDING_TTL


def test_same_key_different_body_is_a_conflict(store):
    store.claim("order-1", "d1", ["m1"])
    store.complete("order-1", "d1", ["m1"])
    with pytest.raises(IdempotencyConflict):
        store.claim("order-1", "d2", ["m2"])


def test_a_released_claim_can_be_taken_again(store):
    store.claim("order-1", "d1", ["m1"])
    store.release("order-1")
    assert store.claim("order-1", "d2", ["m2"]) is None


def test_a_pending_claim_expires_if_its_request_died(store, redis_client):
    store.claim("order-1", "d1", ["m1"])
    assert 0 < redis_client.ttl(store.key("order-1")) <= keys.IDEMPOTENCY_PENDING_TTL


def test_keys_with_any_characters_are_stored_by_digest(store, redis_client):
    store.claim("ключ with spaces:and/colons", "d", ["m"])
    assert all(":and/colons" not in k for k in redis_client.keys("*"))


def test_a_finished_key_lives_as_long_as_the_messages_it_created(redis_client, monkeypatch):
    store = IdempotencyStore(redis_client, retention=3 * keys.DAY)
    store.claim("order-1", "d1", ["m1"])
    store.complete("order-1", "d1", ["m1"])
    assert 3 * keys.DAY - 60 < redis_client.ttl(store.key("order-1")) <= 3 * keys.DAY
    monkeypatch.setenv("MESSAGE_RETENTION_DAYS", "7")
    assert IdempotencyStore(redis_client).retention == 7 * keys.DAY
