from __future__ import annotations

import time

import pytest

from app.delivery.window import CustomerWindows, FallbackTemplate, is_free_form

pytestmark = pytest.mark.any_redis

NUMBER, CUSTOMER = "106540352242922", "573001234567"


@pytest.fixture
def windows(redis_client):
    return CustomerWindows(redis_client)


def test_window_opens_with_an_inbound_message_and_is_per_number(windows):
    assert not windows.is_open(NUMBER, CUSTOMER)
    assert windows.record_inbound(NUMBER, CUSTOMER, time.time() - 60)
    assert windows.is_open(NUMBER, CUSTOMER)
    assert not windows.is_open("106540352242999", CUSTOMER)
    assert not windows.is_open(NUMBER, "573001234568")


def test_a_message_older_than_24_hours_does_not_open_it(windows):
    assert not windows.record_inbound(NUMBER, CUSTOMER, time.time() - 24 * 3600 - 5)
    assert not windows.is_open(NUMBER, CUSTOMER)


def test_a_late_webhook_for_an_older_message_does_not_shorten_the_window(windows, redis_client):
    now = time.time()
    windows.record_inbound(NUMBER, CUSTOMER, now - 10)
    assert not windows.record_inbound(NUMBER, CUSTOMER, now - 20 * 3600)
    assert windows.last_inbound(NUMBER, CUSTOMER) == pytest.approx(now - 10, abs=1)
    assert redis_client.ttl(windows.key(NUMBER, CUSTOMER)) > 23 * 3600


def test_the_window_key_expires_when_the_window_closes(windows, redis_client):
    windows.record_inbound(NUMBER, CUSTOMER, time.time() - 24 * 3600 + 30)
    assert 0 < redis_client.ttl(windows.key(NUMBER, CUSTOMER)) <= 30


def test_a_timestamp_in_the_future_counts_as_now(windows):
    windows.record_inbound(NUMBER, CUSTOMER, time.time() + 3600)
    assert windows.last_inbound(NUMBER, CUSTOMER) <= time.time()


def test_only_templates_are_not_free_form():
    assert not is_free_form({"type": "template"})
    assert is_free_form({"type": "text"}) and is_free_form({}) and is_free_form({"type": "image"})


def test_fallback_template_spec():
    assert FallbackTemplate.parse("") is None
    assert FallbackTemplate.parse("reengage") == FallbackTemplate("reengage", "en_US")
    template = FallbackTemplate.parse(" reengage:es ")
    assert template == FallbackTemplate("reengage", "es")
    assert template.message_for({"to": CUSTOMER, "type": "text"}) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": CUSTOMER,
        "type": "template",
        "template": {"name": "reengage", "language": {"code": "es"}},
    }
    with pytest.raises(ValueError, match="WINDOW_FALLBACK_TEMPLATE"):
        FallbackTemplate.parse(":es")
