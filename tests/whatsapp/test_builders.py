from __future__ import annotations

import pytest

from app.whatsapp import builders as b
from app.whatsapp.errors import MessageValidationError
from app.whatsapp.messages import MAX_LIST_ROWS, MAX_TEXT_BODY, validate_message

TO = "573001234567"


def buttons(n: int) -> list[b.ReplyButton]:
    return [b.ReplyButton(f"id-{i}", f"Option {i}") for i in range(n)]


def rows(n: int, start: int = 0) -> list[b.ListRow]:
    return [b.ListRow(f"row-{i}", f"Row {i}") for i in range(start, start + n)]


def refused(build, field: str) -> MessageValidationError:
    with pytest.raises(MessageValidationError) as info:
        build()
    assert info.value.field == field, info.value
    return info.value


def test_text_with_preview_and_reply_context():
    message = b.text(TO, "See https://example.com", preview_url=True, reply_to="wamid.IN")
    assert message == {
        "messaging_product": "whatsapp",
        "to": TO,
        "context": {"message_id": "wamid.IN"},
        "type": "text",
        "text": {"body": "See https://example.com", "preview_url": True},
    }


def test_three_reply_buttons_pass_and_a_fourth_is_refused_naming_it():
    assert len(b.reply_buttons(TO, "Pick", buttons(3))["interactive"]["action"]["buttons"]) == 3
    error = refused(
        lambda: b.reply_buttons(TO, "Pick", buttons(4)), "interactive.action.buttons[3]"
    )
    assert "at most 3" in error.message


def test_ten_list_rows_pass_across_sections_and_an_eleventh_is_refused():
    sections = [b.ListSection(rows(5), "A"), b.ListSection(rows(5, 5), "B")]
    assert b.list_message(TO, "Menu", "Open", sections)["interactive"]["type"] == "list"
    too_many = [b.ListSection(rows(6), "A"), b.ListSection(rows(5, 6), "B")]
    refused(
        lambda: b.list_message(TO, "Menu", "Open", too_many),
        f"interactive.action.sections[1].rows[{MAX_LIST_ROWS - 6}]",
    )


def test_body_over_meta_limits_is_refused():
    refused(lambda: b.text(TO, "x" * (MAX_TEXT_BODY + 1)), "text.body")
    refused(lambda: b.reply_buttons(TO, "x" * 1025, buttons(1)), "interactive.body.text")
    refused(lambda: b.image(TO, id="1", caption="x" * 1025), "image.caption")


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: b.text("+573001234567", "hi"), "to"),
        (lambda: b.text(TO, "   "), "text.body"),
        (lambda: b.image(TO), "image"),
        (lambda: b.image(TO, id="1", link="https://x.example/a.jpg"), "image"),
        (lambda: b.image(TO, link="ftp://x.example/a.jpg"), "image.link"),
        (lambda: b.location(TO, 91, 0), "location.latitude"),
        (lambda: b.location(TO, 0, -181), "location.longitude"),
        (lambda: b.reply_buttons(TO, "Pick", [b.ReplyButton("a", "x" * 21)]), "interactive.action.buttons[0].reply.title"),
        (lambda: b.reply_buttons(TO, "Pick", [b.ReplyButton("a", "A"), b.ReplyButton("a", "B")]), "interactive.action.buttons[1].reply.id"),
        (lambda: b.reply_buttons(TO, "Pick", []), "interactive.action.buttons"),
        (lambda: b.list_message(TO, "M", "x" * 21, [b.ListSection(rows(1))]), "interactive.action.button"),
        (lambda: b.list_message(TO, "M", "Open", [b.ListSection(rows(1)), b.ListSection(rows(1, 1))]), "interactive.action.sections[0].title"),
        (lambda: b.list_message(TO, "M", "Open", [b.ListSection([b.ListRow("r", "t", "d" * 73)])]), "interactive.action.sections[0].rows[0].description"),
        (lambda: b.cta_url(TO, "Visit", "x" * 21, "https://example.com"), "interactive.action.parameters.display_text"),
        (lambda: b.cta_url(TO, "Visit", "Go", "example.com"), "interactive.action.parameters.url"),
        (lambda: b.flow(TO, "Book", "x" * 21, flow_id="1"), "interactive.action.parameters.flow_cta"),
        (lambda: b.flow(TO, "Book", "Go"), "interactive.action.parameters"),
        (lambda: b.product_list(TO, "H", "B", "cat", [b.ProductSection("S", [str(i) for i in range(31)])]), "interactive.action.sections[0].product_items[30]"),
        (lambda: b.template(TO, "t", ""), "template.language.code"),
        (lambda: b.template(TO, "t", "en", components=[b.button_component("quick_reply", 10, b.payload_parameter("p"))]), "template.components[0].index"),
        (lambda: b.template(TO, "t", "en", components=[b.header_component(b.text_parameter("x" * 61))]), "template.components[0].parameters[0].text"),
        (lambda: b.contacts(TO, []), "contacts"),
        (lambda: b.reaction(TO, "", "👍"), "reaction.message_id"),
        (lambda: b.read_receipt(""), "message_id"),
    ],
)  # fmt: skip
def test_what_meta_would_refuse_is_refused_naming_the_field(build, field):
    refused(build, field)


def test_audio_and_stickers_take_no_caption_and_only_documents_a_filename():
    refused(
        lambda: validate_message({**b.audio(TO, id="1"), "audio": {"id": "1", "caption": "x"}}),
        "audio.caption",
    )
    refused(
        lambda: validate_message({**b.image(TO, id="1"), "image": {"id": "1", "filename": "a"}}),
        "image.filename",
    )
    assert b.document(TO, id="1", filename="menu.pdf", caption="Menu")["document"] == {
        "id": "1",
        "caption": "Menu",
        "filename": "menu.pdf",
    }


def test_builders_and_validate_message_apply_the_same_rules():
    """A builder's output is exactly what validate_message accepts, and a raw dict breaking a
    builder rule is refused by validate_message with the same field."""
    message = b.reply_buttons(TO, "Pick", buttons(3), header=b.Header.of_text("Hi"), footer="f")
    assert validate_message(message) == message
    raw = {**message, "interactive": {**message["interactive"]}}
    raw["interactive"]["action"] = {"buttons": [x.to_dict() for x in buttons(4)]}
    with pytest.raises(MessageValidationError) as info:
        validate_message(raw)
    assert info.value.field == "interactive.action.buttons[3]"


def test_template_with_header_body_and_buttons():
    message = b.template(
        TO,
        "order_update",
        "es",
        components=[
            b.header_component(b.media_parameter("image", link="https://example.com/a.png")),
            b.body_component(
                b.text_parameter("Ana"),
                b.currency_parameter("$10.00", "USD", 10000),
                b.date_time_parameter("May 1"),
            ),
            b.button_component("quick_reply", 0, b.payload_parameter("STOP")),
            b.button_component("url", "1", b.text_parameter("order/42")),
        ],
    )
    components = message["template"]["components"]
    assert [c["type"] for c in components] == ["header", "body", "button", "button"]
    assert components[2] == {
        "type": "button",
        "sub_type": "quick_reply",
        "index": 0,
        "parameters": [{"type": "payload", "payload": "STOP"}],
    }


def test_read_receipt_with_typing_indicator():
    assert b.read_receipt("wamid.X", typing_indicator=True) == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.X",
        "typing_indicator": {"type": "text"},
    }


def test_group_recipients_take_a_group_id():
    message = b.text("Y2FwaV9ncm91cDox", "hi all", recipient_type="group")
    assert message["recipient_type"] == "group" and message["to"] == "Y2FwaV9ncm91cDox"
