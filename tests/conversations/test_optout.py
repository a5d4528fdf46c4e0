"""Marketing opt-out: a keyword as the whole message (accents, case, punctuation ignored) opts
out and is confirmed once; Meta's ``user_preferences`` webhook opts out and back in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app import keys
from app.conversations.customers import CustomerBook
from app.conversations.inbound import handle_webhook
from app.conversations.optout import (
    KEYWORD,
    PREFERENCES,
    OptOutBook,
    OptOutPolicy,
    is_opt_out_keyword,
)
from app.delivery.messages import MessageStore
from tests.stack import TEST_CREDENTIALS, settings_of, text_webhook

pytestmark = pytest.mark.any_redis

NUMBER = TEST_CREDENTIALS["WHATSAPP_PHONE_NUMBER_ID"]
POLICY = OptOutPolicy.from_settings(settings_of({}))
PREFERENCES_PAYLOAD = Path(__file__).parents[1] / "data" / "bsuid" / "user_preferences.json"


@pytest.mark.parametrize(
    "text", ["STOP", "baja", "¡Baja!", "  Parar. ", "cancelár", "CANCELAR", "Unsubscribe"]
)
def test_a_keyword_alone_opts_out_whatever_its_accents_and_case(text):
    assert is_opt_out_keyword(text, POLICY.keywords)


@pytest.mark.parametrize(
    "text", ["quiero darme de baja", "stop it", "bajas", "", "BAJA BAJA", "no pares"]
)
def test_a_keyword_inside_a_sentence_is_no_opt_out(text):
    assert not is_opt_out_keyword(text, POLICY.keywords)


def test_the_keywords_are_a_setting():
    policy = OptOutPolicy.from_settings(settings_of({"OPT_OUT_KEYWORDS": "alto, SAIR"}))
    assert policy.keywords == ("alto", "SAIR")
    assert policy.is_opt_out("sair") and not policy.is_opt_out("stop")


def run(redis_client, payload, sends):
    return handle_webhook(
        payload,
        redis_client=redis_client,
        enqueue_turn=lambda turn: sends.append(("turn", turn["id"])),
        opt_out=POLICY,
        enqueue_send=lambda message_id, lane: sends.append((lane, message_id)),
    )


def test_a_keyword_opts_out_and_is_confirmed_once_not_answered(redis_client):
    sends: list = []
    first = text_webhook("573001112233", "¡BAJA!")
    result = run(redis_client, first, sends)
    assert result.opted_out and not result.accepted
    ((lane, confirmation),) = sends
    assert lane == "high"
    record = MessageStore(redis_client).get(confirmation)
    assert record.payload["to"] == "573001112233"
    assert record.payload["text"]["body"] == POLICY.confirmation
    opt_out = OptOutBook(redis_client).get(NUMBER, "573001112233")
    assert opt_out.source == KEYWORD
    # Written again: still opted out, no second confirmation.
    run(redis_client, text_webhook("573001112233", "stop"), sends)
    assert len(sends) == 1
    # Any other message is a turn as usual.
    run(redis_client, text_webhook("573001112233", "hola"), sends)
    assert sends[-1][0] == "turn"


def test_the_keyword_message_processed_again_is_confirmed_with_the_same_message(redis_client):
    sends: list = []
    payload = text_webhook("573001112234", "Parar")
    run(redis_client, payload, sends)
    wamid = payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    redis_client.delete(keys.INBOUND_MESSAGE.format(wamid=wamid))  # as if its run died
    run(redis_client, payload, sends)
    assert [s[1] for s in sends] == [sends[0][1]] * 2  # one message id: the send is idempotent


def test_metas_marketing_preference_opts_out_and_back_in(redis_client):
    payload = json.loads(PREFERENCES_PAYLOAD.read_text())
    number = payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"]
    sends: list = []
    run(redis_client, payload, sends)
    key = CustomerBook(redis_client).key_for(number, "573001234567")
    assert key == CustomerBook(redis_client).key_for(number, "CO.88001122334455667788")
    assert OptOutBook(redis_client).get(number, key).source == PREFERENCES
    assert sends == []  # WhatsApp itself showed the customer their choice
    item = payload["entry"][0]["changes"][0]["value"]["user_preferences"][0]
    item["value"] = "resume"
    run(redis_client, payload, sends)
    assert OptOutBook(redis_client).get(number, key) is None
