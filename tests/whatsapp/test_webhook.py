from __future__ import annotations

import pytest

from app.whatsapp.webhook import WebhookFormatError, parse_webhook


def test_every_spec_example_parses_without_losing_a_message(webhook_examples):
    assert len(webhook_examples) == 16
    for name, payload in webhook_examples.items():
        event = parse_webhook(payload)
        raw_changes = [c for e in payload["entry"] for c in e["changes"]]
        assert len(event.changes) == len(raw_changes), name
        raw_messages = [m for c in raw_changes for m in c["value"].get("messages", [])]
        assert [m.raw for m in event.messages] == raw_messages, name
        for message in event.messages:
            assert message.metadata.phone_number_id == "106540352242922"
            assert message.timestamp > 0


def test_text_example_fields(webhook_examples):
    (message,) = parse_webhook(webhook_examples["Text Message"]).messages
    assert message.type == "text"
    assert message.from_ == "16505551234"
    assert message.text == "Does it come in another color?"
    assert message.contact_name == "Sheena Nelson"


def test_interactive_and_button_replies_expose_the_chosen_title(webhook_examples):
    (button,) = parse_webhook(webhook_examples["Interactive Button Reply Message"]).messages
    (listed,) = parse_webhook(webhook_examples["Interactive List Reply Message"]).messages
    (template,) = parse_webhook(webhook_examples["Button Message"]).messages
    assert button.text == button.raw["interactive"]["button_reply"]["title"]
    assert listed.text == listed.raw["interactive"]["list_reply"]["title"]
    assert template.text == template.raw["button"]["text"]


def test_reply_context_is_kept(webhook_examples):
    (message,) = parse_webhook(
        webhook_examples["Text Message with Context (Product Inquiry)"]
    ).messages
    assert message.context["referred_product"]["product_retailer_id"] == "di9ozbzfi4"


def test_media_messages_have_no_text(webhook_examples):
    (image,) = parse_webhook(webhook_examples["Image Message"]).messages
    assert image.text is None
    assert image.content["id"]


def test_statuses_are_parsed():
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "1", "phone_number_id": "2"},
                            "statuses": [
                                {
                                    "id": "wamid.A",
                                    "status": "failed",
                                    "timestamp": "1700000000",
                                    "recipient_id": "573001234567",
                                    "errors": [{"code": 131026, "title": "Message undeliverable"}],
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    (status,) = parse_webhook(payload).statuses
    assert (status.id, status.status, status.recipient_id) == ("wamid.A", "failed", "573001234567")
    assert status.errors[0]["code"] == 131026


def test_unknown_fields_and_types_are_kept_not_rejected():
    payload = {
        "object": "whatsapp_business_account",
        "future": True,
        "entry": [
            {
                "id": "1",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messages": [
                                {
                                    "id": "wamid.X",
                                    "from": "1",
                                    "timestamp": "1",
                                    "type": "hologram",
                                    "hologram": {},
                                }
                            ]
                        },
                    },
                    {"field": "something_new", "value": {"x": 1}},
                ],
            }
        ],
    }
    event = parse_webhook(payload)
    assert event.messages[0].type == "hologram"
    assert event.messages[0].text is None
    assert [c.field for c in event.changes] == ["messages", "something_new"]


@pytest.mark.parametrize(
    "payload", [None, [], {"object": "page", "entry": []}, {"object": "whatsapp_business_account"}]
)
def test_non_whatsapp_envelopes_are_refused(payload):
    with pytest.raises(WebhookFormatError):
        parse_webhook(payload)


def test_garbage_inside_the_envelope_is_skipped():
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            "x",
            {
                "changes": [
                    None,
                    {
                        "field": "messages",
                        "value": {
                            "messages": [{"no": "id"}, 5],
                            "statuses": [{"id": "w"}],
                            "contacts": "nope",
                        },
                    },
                ]
            },
        ],
    }
    event = parse_webhook(payload)
    assert event.messages == [] and event.statuses == []


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "text", "text": "not an object"},
        {"type": "text", "text": {"body": 5}},
        {"type": "interactive", "interactive": {"type": "button_reply", "button_reply": "x"}},
        {"type": "interactive", "interactive": {"type": ["list"]}},
        {"type": "button", "button": None},
    ],
)
def test_text_of_malformed_messages_is_none(raw):
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "changes": [
                    {
                        "field": "messages",
                        "value": {"messages": [{"id": "wamid.1", "from": "1", **raw}]},
                    }
                ]
            }
        ],
    }
    (message,) = parse_webhook(payload).messages
    assert message.text is None
