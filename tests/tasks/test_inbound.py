"""The inbound task for a gateway with several numbers: each message is handled with the token of
the number the customer wrote to (read receipt, media download) and answered from that number."""

from __future__ import annotations

import base64
import hashlib

import pytest

import tasks.inbound
from app.clients import client_for
from app.conversations.context import ConversationBusyError, ConversationStore
from app.conversations.inbound import answer_turn, reply_id
from app.conversations.responders.rules import RulesResponder
from app.conversations.responders.service import ReplyService
from app.delivery.dead_letters import DeadLetterStore
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
    monkeypatch.setattr(tasks.inbound, "turn_step", lambda responder_backend: turns.append)
    return sim, settings, turns


@pytest.fixture
def local_answers(second_number, monkeypatch, tmp_path):
    """Runs ``process_webhook`` in this process with the rules responder; the turns it would hand
    to the context queue and the sends it would queue are kept instead."""
    _, settings = second_number
    settings = settings.model_copy(
        update={"media_dir": str(tmp_path), "responder_backend": "rules"}
    )
    queued: dict[str, list] = {"turns": [], "sends": []}
    monkeypatch.setattr(tasks.inbound, "get_settings", lambda: settings)
    monkeypatch.setattr(tasks.inbound, "enqueue_record_turn", queued["turns"].append)
    monkeypatch.setattr(
        tasks.inbound, "enqueue_send_message", lambda *send: queued["sends"].append(send)
    )
    return queued


def exchange_ids(redis_client) -> list[str]:
    conversation = ConversationStore(redis_client).get(SECOND_NUMBER, CUSTOMER)
    return [exchange.id for exchange in conversation.exchanges]


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


def test_with_a_local_responder_the_webhook_task_records_the_turn_and_its_answer(
    local_answers, redis_client
):
    payload = to_number(text_webhook(CUSTOMER, "Hola"), SECOND_NUMBER)
    wamid = payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    tasks.inbound.process_webhook(payload)
    assert local_answers["turns"] == []  # no context.record_turn, answer_turn nor record_reply
    assert local_answers["sends"] == [(reply_id(wamid), "high")]
    assert exchange_ids(redis_client) == [wamid, reply_id(wamid)]


def test_a_turn_recorded_and_answered_twice_is_answered_once(
    local_answers, monkeypatch, redis_client
):
    turns: list[dict] = []
    monkeypatch.setattr(tasks.inbound, "turn_step", lambda responder_backend: turns.append)
    tasks.inbound.process_webhook(to_number(text_webhook(CUSTOMER, "Hola"), SECOND_NUMBER))
    (turn,) = turns
    tasks.inbound.record_and_answer(turn)
    tasks.inbound.record_and_answer(turn)  # a redelivered task resumes where the first stopped
    assert {message_id for message_id, _ in local_answers["sends"]} == {reply_id(turn["id"])}
    assert exchange_ids(redis_client) == [turn["id"], reply_id(turn["id"])]


def test_a_conversation_that_stays_busy_hands_the_turn_to_the_context_queue(
    local_answers, monkeypatch
):
    def busy(*args, **kwargs):
        raise ConversationBusyError("the conversation kept changing; try again")

    monkeypatch.setattr(ConversationStore, "update", busy)
    tasks.inbound.process_webhook(to_number(text_webhook(CUSTOMER, "Hola"), SECOND_NUMBER))
    assert len(local_answers["turns"]) == 1  # context.record_turn retries it with a backoff
    assert local_answers["sends"] == []


@pytest.mark.parametrize("backend", ["http", "openai"])
def test_a_remote_responder_answers_in_a_task_of_its_own(backend):
    assert tasks.inbound.turn_step(backend) is tasks.inbound.enqueue_record_turn


def test_a_turn_that_fails_here_is_dead_lettered_alone_and_its_sibling_answered(
    local_answers, monkeypatch, redis_client
):
    def answer_or_fail(turn, **kwargs):
        if turn["text"] == "boom":
            raise ValueError("a defect")
        return answer_turn(turn, **kwargs)

    monkeypatch.setattr(tasks.inbound, "answer_turn", answer_or_fail)
    payload = to_number(text_webhook(CUSTOMER, "boom"), SECOND_NUMBER)
    messages = payload["entry"][0]["changes"][0]["value"]["messages"]
    messages.append({**messages[0], "id": messages[0]["id"] + "2", "text": {"body": "Hola"}})
    tasks.inbound.process_webhook(payload)
    (letter,) = DeadLetterStore(redis_client).list()
    assert (letter.kind, letter.task, letter.payload["text"]) == (
        "turn",
        "context.record_turn",
        "boom",
    )
    assert local_answers["sends"] == [(reply_id(messages[1]["id"]), "high")]
