"""The inbound task for a gateway with several numbers: each message is handled with the token of
the number the customer wrote to (read receipt, media download) and answered from that number."""

from __future__ import annotations

import base64
import hashlib

import pytest

import tasks.inbound
from app.clients import client_for
from app.conversations.inbound import answer_turn
from app.conversations.responders.rules import RulesResponder
from app.conversations.responders.service import ReplyService
from app.delivery.messages import MessageStore
from tests.stack import SECOND_NUMBER, text_webhook

CUSTOMER = "573001234567"
JPEG = b"\xff\xd8\xff\xe0" + b"taj mahal" * 100


def to_number(payload: dict, phone_number_id: str) -> dict:
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = phone_number_id
    return payload


@pytest.fixture
def inbound(second_number, monkeypatch, tmp_path):
    """Runs ``process_webhook`` in this process against the second number's simulator; the
    turns it hands on are kept instead of enqueued."""
    sim, settings = second_number
    turns: list[dict] = []
    settings = settings.model_copy(update={"media_dir": str(tmp_path)})
    monkeypatch.setattr(tasks.inbound, "get_settings", lambda: settings)
    monkeypatch.setattr(tasks.inbound, "enqueue_record_turn", turns.append)
    return sim, settings, turns


def test_a_read_receipt_goes_with_the_token_of_the_number_written_to(inbound):
    sim, _, turns = inbound
    to_second = to_number(text_webhook(CUSTOMER, "Hola"), SECOND_NUMBER)
    wamid = to_second["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    tasks.inbound.process_webhook(to_second)
    assert [r["message_id"] for r in sim.state.read_receipts] == [wamid]
    # A message to the configured number is marked read with that number's token and path,
    # which the second number's simulator refuses: nothing more reaches it.
    tasks.inbound.process_webhook(text_webhook(CUSTOMER, "Hola otra vez"))
    assert len(sim.state.read_receipts) == 1
    assert len(turns) == 2  # a refused receipt costs the receipt, never the message


def test_media_is_downloaded_with_the_token_of_the_number_written_to(inbound):
    sim, settings, turns = inbound
    media_id = client_for(settings, SECOND_NUMBER).upload_media(JPEG, mime_type="image/jpeg")
    payload = to_number(text_webhook(CUSTOMER, "x"), SECOND_NUMBER)
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    del message["text"]
    message["type"] = "image"
    message["image"] = {
        "id": media_id,
        "mime_type": "image/jpeg",
        "sha256": base64.b64encode(hashlib.sha256(JPEG).digest()).decode(),
    }
    tasks.inbound.process_webhook(payload)
    (turn,) = turns
    assert turn["structured"]["media"]["stored"] is True
    assert turn["structured"]["media"]["size"] == len(JPEG)


def test_the_reply_goes_out_from_the_number_written_to(inbound, redis_client):
    _, _, turns = inbound
    tasks.inbound.process_webhook(to_number(text_webhook(CUSTOMER, "Hola"), SECOND_NUMBER))
    sends = []
    message_id = answer_turn(
        turns[0],
        redis_client=redis_client,
        service=ReplyService(RulesResponder(), redis_client=redis_client, timeout=5),
        enqueue_send=lambda message_id, lane: sends.append(message_id),
        enqueue_reply=lambda reply: None,
        context_messages=10,
    )
    assert sends == [message_id]
    assert MessageStore(redis_client).get(message_id).phone_number_id == SECOND_NUMBER
