"""Pricing from status webhooks: each message counted once per day, number and category, in
Redis for the API and in a Prometheus counter."""

from __future__ import annotations

import datetime as dt

import pytest
from prometheus_client import REGISTRY

from app.delivery.pricing import count_pricing, report
from app.ops import metrics
from app.simulator.meta import status_item
from app.whatsapp.webhook import parse_webhook
from tests.stack import TEST_CREDENTIALS, envelope

pytestmark = pytest.mark.any_redis

NUMBER = TEST_CREDENTIALS["WHATSAPP_PHONE_NUMBER_ID"]


def status(wamid: str, state: str, category: str, at: int):
    item = status_item(wamid, "573001112233", state, category)
    item["timestamp"] = str(at)
    return parse_webhook(envelope({"statuses": [item]})).statuses[0]


def test_each_message_is_counted_once_on_its_day(redis_client):
    day = int(dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC).timestamp())
    counted = []
    for state in ("sent", "delivered", "sent"):  # Meta prices both, and repeats
        count_pricing(redis_client, status("wamid.A", state, "marketing", day), counted.append)
    count_pricing(redis_client, status("wamid.B", "sent", "marketing", day), counted.append)
    count_pricing(redis_client, status("wamid.C", "delivered", "service", day + 86400))
    assert count_pricing(redis_client, status("wamid.D", "read", "marketing", day)) is None
    assert [m.category for m in counted] == ["marketing", "marketing"]
    rows = report(redis_client, dt.date(2026, 11, 30), dt.date(2026, 12, 1))
    assert rows == [
        {
            "day": "2026-11-30",
            "phone_number_id": NUMBER,
            "category": "marketing",
            "billable": True,
            "pricing_model": "PMP",
            "messages": 2,
        },
        {
            "day": "2026-12-01",
            "phone_number_id": NUMBER,
            "category": "service",
            "billable": False,
            "pricing_model": "PMP",
            "messages": 1,
        },
    ]
    assert (
        report(redis_client, dt.date(2026, 11, 30), dt.date(2026, 12, 1), "106540352240000") == []
    )


def test_the_prometheus_counter_counts_what_was_priced(redis_client):
    labels = {
        "phone_number_id": NUMBER,
        "category": "utility",
        "billable": "true",
        "pricing_model": "PMP",
    }
    before = REGISTRY.get_sample_value("whatsapp_priced_messages_total", labels) or 0
    count_pricing(
        redis_client, status("wamid.U", "sent", "utility", 1780000000), metrics.observe_priced
    )
    count_pricing(
        redis_client, status("wamid.U", "delivered", "utility", 1780000000), metrics.observe_priced
    )
    assert REGISTRY.get_sample_value("whatsapp_priced_messages_total", labels) == before + 1
