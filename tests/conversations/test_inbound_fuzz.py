"""Hostile content inside a valid envelope never crashes the inbound worker's logic."""

from __future__ import annotations

import copy

from hypothesis import given
from hypothesis import strategies as st

from app.conversations.inbound import handle_webhook
from app.conversations.responder import GreetingResponder
from app.whatsapp.webhook import WebhookFormatError
from tests.fuzz import fuzz_settings, json_values
from tests.web.test_webhook_fuzz import _mutate


@fuzz_settings
@given(data=st.data())
def test_mutated_meta_payloads_are_handled_or_refused_cleanly(redis_client, webhook_examples, data):
    payload = copy.deepcopy(data.draw(st.sampled_from(list(webhook_examples.values()))))
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        _mutate(payload, data)
    queued = []
    try:
        handle_webhook(
            payload,
            redis_client=redis_client,
            responder=GreetingResponder(),
            enqueue_send=lambda message_id, lane: queued.append((message_id, lane)),
        )
    except WebhookFormatError:
        pass
    assert all(lane == "high" for _, lane in queued)


@fuzz_settings
@given(value=json_values)
def test_arbitrary_json_is_handled_or_refused_cleanly(redis_client, value):
    try:
        handle_webhook(
            value,
            redis_client=redis_client,
            responder=GreetingResponder(),
            enqueue_send=lambda *_: None,
        )
    except WebhookFormatError:
        pass


@fuzz_settings
@given(data=st.data())
def test_any_message_field_of_any_type_is_handled(redis_client, webhook_examples, data):
    examples = [
        e for e in webhook_examples.values() if e["entry"][0]["changes"][0]["value"].get("messages")
    ]
    payload = copy.deepcopy(data.draw(st.sampled_from(examples)))
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message["id"] = "wamid.fuzz" + str(data.draw(st.integers(min_value=0)))
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        key = data.draw(
            st.sampled_from(
                sorted(set(message) | {"text", "type", "from", "context"}) + [message["type"]]
            )
        )
        if key != "id":
            message[key] = data.draw(
                json_values | st.sampled_from(["text", "interactive", "button"])
            )
    handle_webhook(
        payload,
        redis_client=redis_client,
        responder=GreetingResponder(),
        enqueue_send=lambda *_: None,
    )
