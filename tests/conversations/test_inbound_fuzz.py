"""Hostile content inside a valid envelope never crashes the inbound logic, from the webhook
through recording the turn to answering it."""

from __future__ import annotations

import copy

from hypothesis import given
from hypothesis import strategies as st

from app.conversations.inbound import answer_turn, handle_webhook, record_reply, record_turn
from app.conversations.responders.factory import build_responder
from app.conversations.responders.service import ReplyService
from app.whatsapp.webhook import WebhookFormatError
from tests.fuzz import fuzz_settings, json_values
from tests.stack import settings_of
from tests.web.test_webhook_fuzz import _mutate


def run_pipeline(redis_client, payload) -> None:
    """Every step a payload goes through in the workers, in-process."""
    turns, answers, sends, replies = [], [], [], []
    try:
        handle_webhook(payload, redis_client=redis_client, enqueue_turn=turns.append)
    except WebhookFormatError:
        return
    settings = settings_of({})
    service = ReplyService(build_responder(settings), redis_client=redis_client, timeout=5)
    for turn in turns:
        record_turn(
            turn,
            redis_client=redis_client,
            enqueue_answer=answers.append,
            notify_handoff=lambda handoff: None,
        )
    for turn in answers:
        answer_turn(
            turn,
            redis_client=redis_client,
            service=service,
            enqueue_send=lambda *a: sends.append(a),
            enqueue_reply=replies.append,
            context_messages=10,
        )
    for reply in replies:
        record_reply(reply, redis_client=redis_client)
    assert all(lane == "high" for _, lane in sends)


@fuzz_settings
@given(data=st.data())
def test_mutated_meta_payloads_are_handled_or_refused_cleanly(redis_client, webhook_examples, data):
    payload = copy.deepcopy(data.draw(st.sampled_from(list(webhook_examples.values()))))
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        _mutate(payload, data)
    run_pipeline(redis_client, payload)


@fuzz_settings
@given(value=json_values)
def test_arbitrary_json_is_handled_or_refused_cleanly(redis_client, value):
    run_pipeline(redis_client, value)


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
        kind = message.get("type")
        fields = (
            set(message)
            | {"text", "type", "from", "context"}
            | ({kind} if isinstance(kind, str) else set())
        )
        key = data.draw(st.sampled_from(sorted(fields)))
        if key != "id":
            message[key] = data.draw(
                json_values | st.sampled_from(["text", "interactive", "button", "image"])
            )
    run_pipeline(redis_client, payload)
