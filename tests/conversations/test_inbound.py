"""The inbound flow step by step, in-process: real Redis, the simulator over real HTTP for read
receipts, and the task hand-offs captured so each step can be checked and replayed."""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass, field

import pytest

from app.conversations.context import ConversationStore
from app.conversations.handoff import BY_OPERATOR, HandoffStore
from app.conversations.inbound import (
    answer_turn,
    handle_webhook,
    record_reply,
    record_turn,
    reply_id,
)
from app.conversations.media import MediaFetcher
from app.conversations.mediastore import LocalMediaStore
from app.conversations.responders.rules import HANDOFF_REPLIES, RulesResponder
from app.conversations.responders.service import ReplyService
from app.conversations.turns import CustomerTurn
from app.delivery.messages import DELIVERED, MessageStore
from tests.stack import TEST_CREDENTIALS, SimulatorThread, text_webhook

NUMBER = TEST_CREDENTIALS["WHATSAPP_PHONE_NUMBER_ID"]


@pytest.fixture
def simulator():
    sim = SimulatorThread()
    yield sim
    sim.close()


@dataclass
class Flow:
    """Runs every step of the flow in order, the way the queues would, and keeps what each did."""

    redis: object
    client: object
    fetch_media: object = None
    sends: list = field(default_factory=list)
    answered: list = field(default_factory=list)
    handoffs: list = field(default_factory=list)

    def deliver(self, payload: dict) -> list[str | None]:
        turns, answers, replies = [], [], []
        result = handle_webhook(
            payload,
            redis_client=self.redis,
            enqueue_turn=turns.append,
            mark_read=lambda number, wamid, typing: self.client.mark_read(
                wamid, typing_indicator=typing
            ),
            fetch_media=self.fetch_media,
        )
        assert not result.duplicates
        for turn in turns:
            record_turn(
                turn,
                redis_client=self.redis,
                enqueue_answer=answers.append,
                notify_handoff=self.handoffs.append,
            )
        reply_ids = []
        for turn in answers:
            service = ReplyService(RulesResponder(), redis_client=self.redis, timeout=5)
            reply_ids.append(
                answer_turn(
                    turn,
                    redis_client=self.redis,
                    service=service,
                    enqueue_send=lambda mid, lane: self.sends.append((mid, lane)),
                    enqueue_reply=replies.append,
                    context_messages=10,
                )
            )
        for reply in replies:
            record_reply(reply, redis_client=self.redis)
        self.answered.extend(answers)
        return reply_ids

    def say(self, wa_id: str, message: dict) -> tuple[str, list[str | None]]:
        payload = text_webhook(wa_id, "x")
        body = payload["entry"][0]["changes"][0]["value"]["messages"][0]
        body.pop("text")
        body.update(message)
        return body["id"], self.deliver(payload)

    def reply_text(self, message_id: str) -> str:
        return MessageStore(self.redis).get(message_id).payload["text"]["body"]


@pytest.fixture
def flow(redis_client, simulator):
    return Flow(redis_client, simulator.client())


def test_a_text_is_read_recorded_answered_and_queued_on_the_high_lane(flow, simulator):
    wamid, (reply,) = flow.say("573001234567", {"type": "text", "text": {"body": "Hola"}})
    assert reply == reply_id(wamid)
    assert flow.sends == [(reply, "high")]
    assert "Hola Ana" in flow.reply_text(reply)
    (receipt,) = simulator.state.read_receipts
    assert receipt["message_id"] == wamid and receipt["typing_indicator"] == {"type": "text"}
    conversation = ConversationStore(flow.redis).get(NUMBER, "573001234567")
    assert [(e.role, e.id) for e in conversation.exchanges] == [
        ("customer", wamid),
        ("business", reply),
    ]
    assert conversation.exchanges[1].data == {"in_reply_to": wamid, "source": "responder"}


def test_a_follow_up_is_answered_in_context(flow):
    flow.say("573001234567", {"type": "text", "text": {"body": "Hola"}})
    _, (price,) = flow.say(
        "573001234567", {"type": "text", "text": {"body": "¿Cuánto cuesta la camiseta roja?"}}
    )
    _, (shipping,) = flow.say(
        "573001234567", {"type": "text", "text": {"body": "¿Y cuánto tarda el envío de esa?"}}
    )
    assert flow.reply_text(price) == "La camiseta roja cuesta 25 USD."
    assert flow.reply_text(shipping) == "La camiseta roja llega en 1 a 2 días hábiles."


@pytest.mark.parametrize(
    "message",
    [
        {"type": "reaction", "reaction": {"message_id": "wamid.OURS", "emoji": "👍"}},
        {
            "type": "system",
            "system": {"body": "User changed number", "type": "user_changed_number"},
        },
        {"type": "unsupported", "errors": [{"code": 131051, "title": "Message type unknown"}]},
        {"type": "ephemeral"},
    ],
)
def test_silent_types_are_recorded_without_a_reply(flow, simulator, message):
    wamid, replies = flow.say("573001234567", message)
    assert replies == [] and flow.sends == []
    (recorded,) = ConversationStore(flow.redis).get(NUMBER, "573001234567").exchanges
    assert recorded.id == wamid
    assert recorded.type == ("unsupported" if message["type"] == "ephemeral" else message["type"])
    typing = [r.get("typing_indicator") for r in simulator.state.read_receipts]
    assert typing == ([] if message["type"] in ("reaction", "system") else [None])


def test_a_reaction_is_kept_with_its_target(flow):
    flow.say(
        "573001234567", {"type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": "❤"}}
    )
    (recorded,) = ConversationStore(flow.redis).get(NUMBER, "573001234567").exchanges
    assert recorded.data["reaction"] == {"message_id": "wamid.X", "emoji": "❤"}
    assert recorded.data["replied_to"] == "wamid.X"


def test_button_and_list_replies_reach_the_responder_as_structured_input(flow):
    flow.say(
        "573001234567",
        {
            "type": "interactive",
            "context": {"from": "15550783881", "id": "wamid.MENU"},
            "interactive": {
                "type": "list_reply",
                "list_reply": {"id": "hours", "title": "Horario de atención", "description": "x"},
            },
        },
    )
    (answered,) = flow.answered
    assert answered["structured"]["choice"] == {
        "kind": "list_reply",
        "id": "hours",
        "title": "Horario de atención",
        "description": "x",
    }
    assert answered["replied_to"] == "wamid.MENU"
    (reply,) = flow.sends
    assert "Abrimos" in flow.reply_text(reply[0])


def test_a_customer_asking_for_a_person_is_handed_over_until_an_operator_ends_it(flow, simulator):
    wa_id = "573001234567"
    asked, (ack,) = flow.say(
        wa_id, {"type": "text", "text": {"body": "Quiero hablar con un asesor"}}
    )
    assert flow.reply_text(ack) == HANDOFF_REPLIES["es"]
    handoffs = HandoffStore(flow.redis)
    assert handoffs.get(NUMBER, wa_id).by == "customer"
    # Someone is told, once: the notification names the conversation.
    assert [(h["customer"], h["by"], h["message_id"]) for h in flow.handoffs] == [
        (wa_id, "customer", asked)
    ]
    assert [key for key, _ in handoffs.active(NUMBER, limit=10)] == [wa_id]

    later, replies = flow.say(wa_id, {"type": "text", "text": {"body": "¿Hola? ¿Alguien?"}})
    assert replies == [] and len(flow.sends) == 1  # not even handed to the answer step
    assert ConversationStore(flow.redis).get(NUMBER, wa_id).has(later)  # still recorded
    assert simulator.state.read_receipts[-1].get("typing_indicator") is None  # nobody "typing"

    assert len(flow.handoffs) == 1  # the handoff already running is not announced again
    assert handoffs.end(NUMBER, wa_id)
    assert handoffs.active(NUMBER, limit=10) == []
    _, (answer,) = flow.say(wa_id, {"type": "text", "text": {"body": "Hola"}})
    assert "Hola Ana" in flow.reply_text(answer)


def test_an_operator_handoff_stops_replies(flow):
    HandoffStore(flow.redis).start(NUMBER, "573001234567", by=BY_OPERATOR, reason="VIP")
    _, replies = flow.say("573001234567", {"type": "text", "text": {"body": "Hola"}})
    assert replies == [] and flow.sends == []
    assert ConversationStore(flow.redis).profile(NUMBER, "573001234567").message_count == 1


def test_an_answer_task_run_twice_sends_one_reply(flow):
    wamid, (first,) = flow.say("573001234567", {"type": "text", "text": {"body": "Hola"}})
    again = answer_turn(
        flow.answered[0],
        redis_client=flow.redis,
        service=ReplyService(RulesResponder(), redis_client=flow.redis, timeout=5),
        enqueue_send=lambda mid, lane: flow.sends.append((mid, lane)),
        enqueue_reply=lambda reply: record_reply(reply, redis_client=flow.redis),
        context_messages=10,
    )
    assert again == first
    assert {mid for mid, _ in flow.sends} == {first}  # re-sent to the idempotent sender only
    exchanges = ConversationStore(flow.redis).get(NUMBER, "573001234567").exchanges
    assert [e.id for e in exchanges] == [wamid, first]


def test_an_answer_task_run_again_after_its_reply_was_delivered_sends_nothing_new(flow):
    wamid, (first,) = flow.say("573001234567", {"type": "text", "text": {"body": "Hola"}})
    store = MessageStore(flow.redis)
    store.mark_sending(first, 1)
    store.record_wamid(first, "wamid.reply1")
    store.advance(first, DELIVERED)  # its body is dropped now
    replies = []
    again = answer_turn(
        flow.answered[0],
        redis_client=flow.redis,
        service=ReplyService(RulesResponder(), redis_client=flow.redis, timeout=5),
        enqueue_send=lambda mid, lane: flow.sends.append((mid, lane)),
        enqueue_reply=replies.append,
        context_messages=10,
    )
    assert again == first and replies == []  # recorded with the first run
    assert store.get(first).status == DELIVERED
    exchanges = ConversationStore(flow.redis).get(NUMBER, "573001234567").exchanges
    assert [e.id for e in exchanges] == [wamid, first]


def test_a_read_receipt_failure_does_not_lose_the_message(redis_client):
    def refuse(number, wamid, typing):
        raise ConnectionError("Graph API unreachable")

    turns = []
    handle_webhook(
        text_webhook("573001234567", "Hola"),
        redis_client=redis_client,
        enqueue_turn=turns.append,
        mark_read=refuse,
    )
    assert len(turns) == 1


# --- Media --------------------------------------------------------------------------------------

JPEG = b"\xff\xd8\xff\xe0" + b"taj mahal" * 100


@dataclass
class Download:
    content: bytes
    mime_type: str
    sha256: str


class FakeDownloader:
    """Plays ``GraphClient.download_media``: the media ids it knows and what they hold."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.calls: list[tuple[str, int]] = []

    def download_media(self, media_id, *, max_bytes, expected_sha256=None):
        self.calls.append((media_id, max_bytes))
        content = self.files[media_id]
        return Download(content, "image/jpeg", hashlib.sha256(content).hexdigest())


def image(media_id: str, content: bytes, caption: str = "Taj Mahal") -> dict:
    digest = base64.b64encode(hashlib.sha256(content).digest()).decode()
    return {
        "type": "image",
        "image": {"caption": caption, "mime_type": "image/jpeg", "sha256": digest, "id": media_id},
    }


def test_media_is_downloaded_verified_stored_and_described(flow, tmp_path):
    downloader = FakeDownloader({"1003383421387256": JPEG})
    flow.fetch_media = MediaFetcher(lambda number: downloader, LocalMediaStore(tmp_path), max_bytes=10_000)
    wamid, (reply,) = flow.say("573001234567", image("1003383421387256", JPEG))
    (answered,) = flow.answered
    media = answered["structured"]["media"]
    assert media["stored"] is True and media["size"] == len(JPEG)
    assert media["key"].startswith(f"{NUMBER}/573001234567/")
    assert (tmp_path / media["key"]).read_bytes() == JPEG
    assert answered["text"] == "[image: image/jpeg] Taj Mahal"
    assert downloader.calls == [("1003383421387256", 10_000)]
    assert reply is not None


def test_media_that_fails_its_checks_is_not_stored_but_the_message_is_answered(flow, tmp_path):
    downloader = FakeDownloader({"1": JPEG, "2": b"x" * 20_000})
    flow.fetch_media = MediaFetcher(lambda number: downloader, LocalMediaStore(tmp_path), max_bytes=10_000)
    tampered = image("1", b"something else")
    _, (first,) = flow.say("573001234567", tampered)
    _, (second,) = flow.say("573001234567", image("2", b"x" * 20_000))
    first_media, second_media = (a["structured"]["media"] for a in flow.answered)
    assert first_media["stored"] is False and "sha256" in first_media["error"]
    assert second_media["stored"] is False and "MEDIA_MAX_BYTES" in second_media["error"]
    assert first and second
    assert not list(tmp_path.rglob("*.jpg"))


def test_turns_survive_the_trip_through_json():
    turn = CustomerTurn(
        id="w", wa_id="1", phone_number_id=NUMBER, type="location", at=time.time(),
        text="[location] x", structured={"location": {"latitude": 1.5}},
    )  # fmt: skip
    assert CustomerTurn.from_dict(turn.to_dict()) == turn


def test_a_reply_is_never_refused_for_a_full_lane(flow, monkeypatch):
    # The API refuses what a full lane cannot take (429 queue_full); a customer who wrote is
    # answered whatever the lanes hold.
    monkeypatch.setenv("SEND_QUEUE_CAPS", "high=1,normal=1,bulk=1")
    store = MessageStore(flow.redis)
    for i in range(3):
        store.create(f"queued-{i}", {"to": "573001111111"}, "high", phone_number_id=NUMBER)
    assert store.waiting("high", NUMBER) == 3
    _, (reply,) = flow.say("573001234567", {"type": "text", "text": {"body": "Hola"}})
    assert reply is not None and flow.sends == [(reply, "high")]
    assert store.waiting("high", NUMBER) == 4
