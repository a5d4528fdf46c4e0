from __future__ import annotations

import pytest

from app.conversations.inbound import claim, finish, release

pytestmark = pytest.mark.any_redis


def test_a_delivery_can_take_up_its_own_claim_but_not_anothers(redis_client):
    assert claim(redis_client, "wamid.1", "task-a")
    assert claim(redis_client, "wamid.1", "task-a")  # the same task, retried or redelivered
    assert not claim(redis_client, "wamid.1", "task-b")  # Meta's second delivery of the message
    finish(redis_client, "wamid.1")
    assert not claim(redis_client, "wamid.1", "task-a")  # done is done, for anyone


def test_release_lets_anyone_claim_again(redis_client):
    assert claim(redis_client, "wamid.2", "task-a")
    release(redis_client, "wamid.2")
    assert claim(redis_client, "wamid.2", "task-b")


def test_without_an_owner_a_claim_is_exclusive(redis_client):
    assert claim(redis_client, "wamid.3")
    assert not claim(redis_client, "wamid.3")
