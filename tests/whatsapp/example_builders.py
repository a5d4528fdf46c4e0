"""Rebuild a Meta request example through our typed builders.

Every field of the example is read and handed to a builder as a typed argument (strings, numbers,
the builder's part classes); the builder assembles the message. Nothing is passed through as a
message dict, so the equality the conformance test checks is the builders' own doing.
"""

from __future__ import annotations

from typing import Any

from app.whatsapp import builders as b


def build(example: dict[str, Any]) -> dict[str, Any]:
    """The message our builders produce for the (sendable) ``example``."""
    if example.get("status") == "read":
        return b.read_receipt(example["message_id"], typing_indicator="typing_indicator" in example)
    kind = example["type"]
    common = {"recipient_type": example.get("recipient_type")}
    if kind != "reaction":
        common["reply_to"] = example.get("context", {}).get("message_id")
    to = example["to"]
    content = example[kind]
    if kind == "text":
        return b.text(to, content["body"], preview_url=content.get("preview_url"), **common)
    if kind == "reaction":
        return b.reaction(to, content["message_id"], content["emoji"], **common)
    if kind in ("image", "video"):
        builder = b.image if kind == "image" else b.video
        return builder(
            to,
            id=content.get("id"),
            link=content.get("link"),
            caption=content.get("caption"),
            **common,
        )
    if kind == "document":
        return b.document(
            to,
            id=content.get("id"),
            link=content.get("link"),
            caption=content.get("caption"),
            filename=content.get("filename"),
            **common,
        )
    if kind in ("audio", "sticker"):
        builder = b.audio if kind == "audio" else b.sticker
        return builder(to, id=content.get("id"), link=content.get("link"), **common)
    if kind == "location":
        return b.location(
            to,
            content["latitude"],
            content["longitude"],
            name=content.get("name"),
            address=content.get("address"),
            **common,
        )
    if kind == "contacts":
        return b.contacts(to, [_card(card) for card in content], **common)
    if kind == "interactive":
        return _interactive(to, content, common)
    if kind == "template":
        language = content["language"]
        return b.template(
            to,
            content["name"],
            language["code"],
            language_policy=language.get("policy"),
            components=[_component(c) for c in content.get("components", [])],
            **common,
        )
    raise AssertionError(f"no builder for {kind}")


def _card(card: dict[str, Any]) -> b.ContactCard:
    return b.ContactCard(
        name=b.ContactName(**card["name"]),
        phones=[b.ContactPhone(**p) for p in card.get("phones", [])],
        emails=[b.ContactEmail(**e) for e in card.get("emails", [])],
        urls=[b.ContactUrl(**u) for u in card.get("urls", [])],
        addresses=[b.ContactAddress(**a) for a in card.get("addresses", [])],
        org=b.ContactOrg(**card["org"]) if "org" in card else None,
        birthday=card.get("birthday"),
    )


def _header(header: dict[str, Any] | None) -> b.Header | None:
    if header is None:
        return None
    if header["type"] == "text":
        return b.Header.of_text(header["text"])
    media = header[header["type"]]
    return b.Header.of_media(header["type"], id=media.get("id"), link=media.get("link"))


def _interactive(to: str, content: dict[str, Any], common: dict[str, Any]) -> dict[str, Any]:
    kind, action = content["type"], content["action"]
    body = content.get("body", {}).get("text")
    footer = content.get("footer", {}).get("text")
    header = content.get("header")
    if kind == "button":
        buttons = [b.ReplyButton(x["reply"]["id"], x["reply"]["title"]) for x in action["buttons"]]
        return b.reply_buttons(to, body, buttons, header=_header(header), footer=footer, **common)
    if kind == "list":
        sections = [
            b.ListSection(
                [b.ListRow(r["id"], r["title"], r.get("description")) for r in s["rows"]],
                title=s.get("title"),
            )
            for s in action["sections"]
        ]
        return b.list_message(
            to,
            body,
            action["button"],
            sections,
            header=header["text"] if header else None,
            footer=footer,
            **common,
        )
    if kind == "product":
        return b.product(
            to,
            action["catalog_id"],
            action["product_retailer_id"],
            body=body,
            footer=footer,
            **common,
        )
    if kind == "product_list":
        sections = [
            b.ProductSection(s["title"], [p["product_retailer_id"] for p in s["product_items"]])
            for s in action["sections"]
        ]
        return b.product_list(
            to, header["text"], body, action["catalog_id"], sections, footer=footer, **common
        )
    if kind == "catalog_message":
        thumbnail = action.get("parameters", {}).get("thumbnail_product_retailer_id")
        return b.catalog(to, body, thumbnail_product_retailer_id=thumbnail, footer=footer, **common)
    if kind == "flow":
        p = action["parameters"]
        payload = p.get("flow_action_payload", {})
        return b.flow(
            to,
            body,
            p["flow_cta"],
            flow_id=p.get("flow_id"),
            flow_name=p.get("flow_name"),
            flow_token=p.get("flow_token"),
            flow_action=p.get("flow_action"),
            screen=payload.get("screen"),
            data=payload.get("data"),
            mode=p.get("mode"),
            header=_header(header),
            footer=footer,
            **common,
        )
    if kind == "order_details":
        return b.order_details(
            to, body, action["parameters"], header=_header(header), footer=footer, **common
        )
    if kind == "order_status":
        p = action["parameters"]
        return b.order_status(
            to,
            body,
            p["reference_id"],
            p["order"]["status"],
            description=p["order"].get("description"),
            footer=footer,
            **common,
        )
    raise AssertionError(f"no builder for interactive {kind}")


def _component(component: dict[str, Any]) -> b.TemplateComponent:
    parameters = [_parameter(p) for p in component.get("parameters", [])]
    if component["type"] == "header":
        return b.header_component(*parameters)
    if component["type"] == "body":
        return b.body_component(*parameters)
    return b.button_component(component["sub_type"], component["index"], *parameters)


def _parameter(parameter: dict[str, Any]) -> dict[str, Any]:
    kind = parameter["type"]
    value = parameter[kind]
    if kind == "text":
        return b.text_parameter(value)
    if kind == "payload":
        return b.payload_parameter(value)
    if kind == "currency":
        return b.currency_parameter(value["fallback_value"], value["code"], value["amount_1000"])
    if kind == "date_time":
        return b.date_time_parameter(**value)
    if kind in ("image", "video", "document"):
        return b.media_parameter(kind, id=value.get("id"), link=value.get("link"))
    if kind == "action":
        return b.action_parameter(value)
    raise AssertionError(f"no builder for template parameter {kind}")
