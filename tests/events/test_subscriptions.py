"""Subscriptions: the URL rules, the event types, and secrets kept encrypted."""

from __future__ import annotations

import pytest

from app import keys
from app.credentials import generate_key, load_cipher
from app.events.subscriptions import (
    EVENT_TYPES,
    SubscriptionRefused,
    SubscriptionStore,
    check_types,
    check_url,
    read_once,
)

pytestmark = pytest.mark.any_redis


def resolver(*addresses: str):
    return lambda host, port: list(addresses)


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com/wa", "http://hooks.example.com:8080/in?x=1"],
)
def test_a_public_http_or_https_url_is_accepted(url):
    assert check_url(url, False, resolver("93.184.216.34")) == url


@pytest.mark.parametrize(
    ("url", "addresses", "says"),
    [
        ("ftp://hooks.example.com/", ["93.184.216.34"], "http or https"),
        ("file:///etc/passwd", [], "http or https"),
        ("https://", [], "host"),
        ("https://user:pw@hooks.example.com/", ["93.184.216.34"], "credentials"),
        ("https://hooks.example.com/\n", ["93.184.216.34"], "spaces"),
        ("https://localhost/", ["127.0.0.1"], "loopback"),
        ("https://10.0.0.5/", ["10.0.0.5"], "private"),
        ("https://192.168.1.1/", ["192.168.1.1"], "private"),
        ("https://metadata/", ["169.254.169.254"], "link-local"),
        ("https://[::1]/", ["::1"], "loopback"),
        ("https://mapped/", ["::ffff:127.0.0.1"], "loopback"),
        ("https://0.0.0.0/", ["0.0.0.0"], "loopback"),
        # One private answer among public ones is enough for a rebinding resolver.
        ("https://rebind.example.com/", ["93.184.216.34", "10.1.2.3"], "private"),
    ],
)
def test_a_url_events_may_not_go_to_is_refused(url, addresses, says):
    with pytest.raises(SubscriptionRefused, match=says) as refused:
        check_url(url, False, resolver(*addresses))
    assert refused.value.field == "url"
    assert "pw" not in str(refused.value)


def test_a_host_that_does_not_resolve_is_refused():
    def fails(host, port):
        raise OSError("no such host")

    with pytest.raises(SubscriptionRefused, match="does not resolve"):
        check_url("https://nowhere.invalid/", False, fails)


def test_private_urls_are_allowed_only_when_configured():
    assert check_url("http://127.0.0.1:9/hook", True, resolver("127.0.0.1"))
    with pytest.raises(SubscriptionRefused):
        check_url("http://127.0.0.1:9/hook", False, resolver("127.0.0.1"))
    with pytest.raises(SubscriptionRefused, match="http or https"):
        check_url("gopher://127.0.0.1/", True)


@pytest.mark.parametrize("types", [[], "message.received", ["message.received", "nope"], None])
def test_unknown_or_missing_event_types_are_refused(types):
    with pytest.raises(SubscriptionRefused) as refused:
        check_types(types)
    assert refused.value.field == "events"


def test_event_types_are_kept_once_in_order():
    assert check_types(["message.status", "message.received", "message.status"]) == [
        "message.status",
        "message.received",
    ]
    assert "campaign.finished" in EVENT_TYPES


def test_the_secret_is_stored_encrypted_and_given_once(redis_client):
    cipher = load_cipher(generate_key())
    store = SubscriptionStore(redis_client, cipher)
    subscription, secret = store.create("https://hooks.example.com/", ["message.received"])
    raw = redis_client.hget(keys.EVENT_SUBSCRIPTIONS, subscription.id)
    assert secret.startswith("whsec_") and secret not in raw
    assert "secret" not in subscription.to_dict()
    assert store.secret(subscription.id) == secret
    assert store.get(subscription.id) == subscription
    assert store.matching("message.received") == [subscription]
    assert store.matching("message.status") == []
    assert store.delete(subscription.id) and not store.delete(subscription.id)
    assert store.list() == []


def test_a_secret_reads_after_key_rotation(redis_client):
    old, new = generate_key(), generate_key()
    store = SubscriptionStore(redis_client, load_cipher(old))
    subscription, secret = store.create("https://hooks.example.com/", ["message.status"])
    rotated = SubscriptionStore(redis_client, load_cipher(f"{new},{old}"))
    assert rotated.secret(subscription.id) == secret


def test_rotation_reencrypts_every_secret_under_the_newest_key(redis_client):
    old, new = generate_key(), generate_key()
    subscription, secret = SubscriptionStore(redis_client, load_cipher(old)).create(
        "https://hooks.example.com/", ["message.status"]
    )
    assert SubscriptionStore(redis_client, load_cipher(f"{new},{old}")).rotate() == 1
    assert SubscriptionStore(redis_client, load_cipher(new)).secret(subscription.id) == secret


def test_work_applied_together_reads_the_subscriptions_once(redis_client):
    """A batch of status webhooks announces its events from one read: a subscription made during
    the batch is seen from the next one on, as it would be a moment later."""
    store = SubscriptionStore(redis_client, load_cipher(generate_key()))
    first, _ = store.create("https://hooks.example.com/a", ["message.status"])
    with read_once():
        assert store.matching("message.status") == [first]
        second, _ = store.create("https://hooks.example.com/b", ["message.status"])
        assert store.matching("message.status") == [first]
        with read_once():  # a block of its own reads afresh
            assert store.matching("message.status") == [first, second]
    assert store.matching("message.status") == [first, second]
