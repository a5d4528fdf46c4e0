"""Meta's spec as the conformance tests use it: its examples, made sendable, and its schemas,
corrected by the smallest patch that makes Meta's own examples validate.

Nothing here is copied from the spec: everything is read from ``../shared/specs`` at test time.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from jsonschema import Draft202012Validator

RECIPIENT = "16505551234"
"""A real-format number standing in for the examples' ``{{Recipient-Phone-Number}}``."""

_LINK_PLACEHOLDER = re.compile(r"^<?http\(s\)://([^>]*)>?$")
_MEDIA_ID_PLACEHOLDER = re.compile(r"<(?:[A-Z]+_OBJECT|MEDIA)_ID>")
MEDIA_ID = "1003383421387256"
"""What a media id placeholder becomes: media ids are numeric."""


def message_examples(spec: dict) -> dict[str, dict]:
    """The request examples of ``POST /{Version}/{Phone-Number-ID}/messages``, by name."""
    post = spec["paths"]["/{Version}/{Phone-Number-ID}/messages"]["post"]
    examples = post["requestBody"]["content"]["application/json"]["examples"]
    return {name: example["value"] for name, example in examples.items()}


def sendable(example: dict) -> dict:
    """The example as a real client would send it. Only placeholders change:

    - ``to`` (``{{Recipient-Phone-Number}}``, or ``+1...``, which our rules refuse) becomes
      :data:`RECIPIENT`;
    - link placeholders such as ``<http(s)://audio-url>`` become ``https://example.com/...``;
    - media id placeholders such as ``<AUDIO_OBJECT_ID>`` become :data:`MEDIA_ID`;
    - the multi-product example's ``<HEADER_TYPE>`` becomes ``text`` (the only header Meta allows
      on a product list);
    - a missing ``type`` is written out: ``text`` (Meta's default, for the preview-URL example)
      or ``interactive`` (the list-reply example forgot it; Meta would read it as text).
    """
    message = copy.deepcopy(example)
    if "status" in message:
        return message
    message["to"] = RECIPIENT

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value) for value in node]
        if isinstance(node, str) and (match := _LINK_PLACEHOLDER.match(node)):
            return "https://example.com/" + (match.group(1) or "file")
        if isinstance(node, str) and _MEDIA_ID_PLACEHOLDER.fullmatch(node):
            return MEDIA_ID
        return node

    message = walk(message)
    header = message.get("interactive", {}).get("header", {})
    if header.get("type") == "<HEADER_TYPE>":
        header["type"] = "text"
    if "type" not in message:
        message["type"] = "interactive" if "interactive" in message else "text"
    return message


# -- the schema patch -------------------------------------------------------------------------

SCHEMA_PATCH = """
1. ``allOf`` members that say ``additionalProperties: false`` reject every property another
   member defines; the restriction moves to the parent as ``unevaluatedProperties: false``.
2. ``recipient_type`` is required by ``BaseMessageProperties`` though Meta defaults it and most
   examples leave it out: no longer required.
3. ``location.latitude``/``longitude`` are typed string; the examples and the API use numbers.
4. ``template.language.policy`` is required though only one example sends it: no longer required.
5. Template button components: ``index`` is a string with an odd pattern while examples send
   integers, and ``sub_type`` is an enum without ``flow`` or upper-case ``CATALOG``, which the
   examples send: both become plain (integer or string) values.
6. The webhook's ``IncomingMessage`` and ``SystemMessage`` are built on the *outbound* schemas
   (``TextMessage``, ``BaseMessageProperties``, which require ``to`` and ``messaging_product``),
   because the spec's inbound and outbound schemas share names and the outbound ones won. An
   inbound message is held instead to what every inbound message carries: ``id`` and
   ``timestamp`` strings, a ``type``, and its sender as ``from`` (a phone number) or, for a
   customer who hides it, ``from_user_id`` (a business-scoped user id, which the v23 spec
   predates); the system message keeps its own ``system`` object.
7. ``groups[].timestamp`` and ``added/removed_participants[].input/wa_id`` contradict the
   examples (string timestamps, numeric participants): both types are allowed, and the change
   field ``group_participants_update`` is added beside the misspelt ``group_participant_update``.
8. A status requires ``recipient_id``, the customer's phone number, which Meta leaves out since
   business-scoped user ids for a customer who hides it: a status names its recipient by
   ``recipient_id`` or ``recipient_user_id`` (the v23 spec predates the latter).
9. The system message ``type`` enum knows ``user_changed_number`` only; Meta added
   ``user_changed_user_id`` (a changed BSUID, no phone number) after v23.
"""
"""What :func:`patched_components` corrects, each item a defect Meta's own examples expose."""

# Interactive types the spec's InteractiveObject does not describe at all (its ``type`` enum and
# ``action`` oneOf lack them): patching them in would be writing a schema, not correcting one.
UNSCHEMED_INTERACTIVE_TYPES = frozenset(
    {"order_details", "order_status", "cta_url", "location_request_message"}
)


def patched_components(spec: dict) -> dict:
    """A copy of the spec's ``components`` with :data:`SCHEMA_PATCH` applied."""
    components = copy.deepcopy(spec["components"])
    _move_additional_properties(components)
    _walk(components, _patch_node)
    schemas = components["schemas"]
    schemas["IncomingMessage"] = copy.deepcopy(INBOUND_MESSAGE)
    schemas["SystemMessage"]["allOf"][0] = copy.deepcopy(INBOUND_MESSAGE)
    return components


INBOUND_MESSAGE = {
    "type": "object",
    "properties": {
        "from": {"type": "string"},
        "from_user_id": {"type": "string"},
        "id": {"type": "string"},
        "timestamp": {"type": "string"},
        "type": {"type": "string"},
    },
    "required": ["id", "timestamp", "type"],
    "anyOf": [{"required": ["from"]}, {"required": ["from_user_id"]}],
}
"""What patch 6 holds every inbound message to."""


def validator(components: dict, schema_name: str) -> Draft202012Validator:
    """A JSON Schema 2020-12 validator for ``#/components/schemas/<schema_name>``."""
    return Draft202012Validator(
        {"components": components, "$ref": f"#/components/schemas/{schema_name}"}
    )


def message_schema_name(spec: dict, message: dict) -> str:
    """The schema a message object must satisfy, by the spec's ``type`` discriminator."""
    mapping = spec["components"]["schemas"]["Message"]["discriminator"]["mapping"]
    return mapping[message.get("type", "text")].rsplit("/", 1)[-1]


def schema_errors(components: dict, schema_name: str, instance: Any) -> list[str]:
    """Every leaf error of ``instance`` against ``schema_name``, as readable lines."""
    lines = []

    def leaves(errors, depth=0):
        for error in errors:
            if error.context and depth < 5:
                leaves(error.context, depth + 1)
            else:
                lines.append(f"{list(error.absolute_path)}: {error.message[:200]}")

    leaves(validator(components, schema_name).iter_errors(instance))
    return lines


def _move_additional_properties(node: Any) -> None:
    if isinstance(node, dict):
        members = node.get("allOf")
        if isinstance(members, list):
            closed = [
                m for m in members if isinstance(m, dict) and m.get("additionalProperties") is False
            ]
            for member in closed:
                del member["additionalProperties"]
            if closed:
                node["unevaluatedProperties"] = False
        for value in node.values():
            _move_additional_properties(value)
    elif isinstance(node, list):
        for value in node:
            _move_additional_properties(value)


def _walk(node: Any, visit) -> None:
    if isinstance(node, dict):
        visit(node)
        for value in node.values():
            _walk(value, visit)
    elif isinstance(node, list):
        for value in node:
            _walk(value, visit)


def _patch_node(node: dict) -> None:
    required = node.get("required")
    properties = node.get("properties") if isinstance(node.get("properties"), dict) else {}
    if isinstance(required, list) and "recipient_type" in required:
        required.remove("recipient_type")
    if {"latitude", "longitude"} <= properties.keys():
        for name in ("latitude", "longitude"):
            properties[name] = {"type": ["number", "string"]}
    if "code" in properties and "policy" in properties and isinstance(required, list):
        if "policy" in required:
            required.remove("policy")
    if "sub_type" in properties and "index" in properties:
        properties["sub_type"] = {"type": "string"}
        properties["index"] = {"type": ["integer", "string"]}
    if "group_id" in properties and "timestamp" in properties:
        properties["timestamp"] = {"type": ["string", "integer"]}
    if "input" in properties and "wa_id" in properties:
        properties["input"] = {"type": ["string", "integer"]}
        properties["wa_id"] = {"type": ["string", "integer"]}
    if {"recipient_id", "status"} <= properties.keys() and isinstance(required, list):
        if "recipient_id" in required:
            required.remove("recipient_id")
            node["anyOf"] = [{"required": ["recipient_id"]}, {"required": ["recipient_user_id"]}]
    system_type = properties.get("type")
    if isinstance(system_type, dict) and system_type.get("enum") == ["user_changed_number"]:
        system_type["enum"] = ["user_changed_number", "user_changed_user_id"]
    field = properties.get("field")
    if isinstance(field, dict) and "group_participant_update" in field.get("enum", []):
        field["enum"] = [*field["enum"], "group_participants_update"]
