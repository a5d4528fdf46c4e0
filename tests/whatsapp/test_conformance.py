"""Conformance with Meta's spec: its examples are the ground truth, its schemas a second check
once corrected by the documented patch in :mod:`tests.whatsapp.spec_support`.

Every test here needs ``../shared/specs`` and skips with the reason when it is absent.
"""

from __future__ import annotations

import copy
import dataclasses

import pytest
import requests

from app.whatsapp import errors
from app.whatsapp.webhook import parse_webhook
from tests.simulator.receiver import WebhookReceiver
from tests.stack import SimulatorThread, wait_for
from tests.whatsapp.example_builders import build
from tests.whatsapp.spec_support import (
    RECIPIENT,
    UNSCHEMED_INTERACTIVE_TYPES,
    message_examples,
    message_schema_name,
    patched_components,
    schema_errors,
    sendable,
)

TEXT = {"messaging_product": "whatsapp", "to": RECIPIENT, "type": "text", "text": {"body": "Hi"}}


@pytest.fixture(scope="module")
def components(spec):
    return patched_components(spec)


@pytest.fixture
def sim():
    receiver = WebhookReceiver()
    server = SimulatorThread(webhook_url=receiver.url, status_delay=0.01)
    yield server, receiver
    server.close()
    receiver.close()


# -- requests ---------------------------------------------------------------------------------


def test_every_request_example_built_by_our_builders_reaches_the_simulator_unchanged(spec, sim):
    server, _ = sim
    examples = message_examples(spec)
    assert len(examples) == 50
    client = server.client()
    for name, example in examples.items():
        expected = sendable(example)
        built = build(expected)
        if "status" in built:
            client.request("POST", f"{client.phone_number_id}/messages", json=built)
            assert server.state.read_receipts[-1] == expected, name
        else:
            client.send_message(built)
            assert server.state.received[-1]["body"] == expected, name
    assert len(server.state.received) == 49 and len(server.state.read_receipts) == 1


def test_every_body_our_builders_produce_validates_against_the_patched_schema(spec, components):
    checked = 0
    for name, example in message_examples(spec).items():
        built = build(sendable(example))
        if "status" in built:
            continue  # the spec has no schema for the read receipt
        if built.get("interactive", {}).get("type") in UNSCHEMED_INTERACTIVE_TYPES:
            continue  # the spec's InteractiveObject does not describe these types
        assert schema_errors(components, message_schema_name(spec, built), built) == [], name
        checked += 1
    assert checked == 47


def test_the_patched_schema_still_refuses_broken_bodies(spec, components):
    numeric_body = {**TEXT, "text": {"body": 5}}
    stray_field = {**TEXT, "colour": "blue"}
    bad_latitude = {
        **TEXT,
        "type": "location",
        "location": {"latitude": True, "longitude": 1},
    }
    del bad_latitude["text"]
    for body in (numeric_body, stray_field, bad_latitude):
        assert schema_errors(components, message_schema_name(spec, body), body), body


# -- webhooks ---------------------------------------------------------------------------------


def _leaves(value, into: list[str]) -> list[str]:
    if isinstance(value, dict):
        for item in value.values():
            _leaves(item, into)
    elif isinstance(value, list | tuple):
        for item in value:
            _leaves(item, into)
    elif value is not None:
        into.append(str(value))
    return into


def _typed_leaves(event) -> list[str]:
    """Every value our typed objects expose, without their ``raw`` dicts."""
    values: list[str] = []

    def add(obj):
        if dataclasses.is_dataclass(obj):
            for f in dataclasses.fields(obj):
                if f.name != "raw":
                    add(getattr(obj, f.name))
        elif isinstance(obj, list | tuple):
            for item in obj:
                add(item)
        elif isinstance(obj, dict):
            _leaves(obj, values)
        elif obj is not None:
            values.append(str(obj))

    for message in event.messages:
        add(message.metadata)
        for part in (
            message.id,
            message.from_,
            message.timestamp,
            message.type,
            message.text if message.type == "text" else None,
            message.reply_context,
            message.referral,
            message.errors,
            message.media,
            message.location,
            message.shared_contacts,
            message.reaction,
            message.button,
            message.interactive_reply,
            message.order,
            message.system,
        ):
            add(part)
    for contact in event.contacts:
        add([contact.wa_id, contact.name])
    for group in event.groups:
        add(group)
    return values


def test_every_webhook_example_parses_into_our_types_without_losing_a_field(webhook_examples):
    assert len(webhook_examples) == 16
    for name, payload in webhook_examples.items():
        event = parse_webhook(payload)
        values = [
            str(v)
            for entry in payload["entry"]
            for change in entry["changes"]
            for key, v in change["value"].items()
            if key != "messaging_product"
            for v in _leaves(v, [])
        ]
        typed = _typed_leaves(event)
        missing = [v for v in values if v not in typed]
        # The change envelope's own fields are typed too.
        assert [c.field for c in event.changes] == [
            c["field"] for e in payload["entry"] for c in e["changes"]
        ], name
        assert missing == [], f"{name}: {missing}"


def _replayable(message: dict) -> dict:
    """A webhook example's message as a simulated customer would send it."""
    message = {
        k: v for k, v in copy.deepcopy(message).items() if k not in ("from", "id", "timestamp")
    }
    media = message.get(message["type"])
    if message["type"] in ("image", "audio", "video", "document", "sticker"):
        # The simulator attaches a file of its own that it can serve, with its real sha256.
        message[message["type"]] = {
            k: v for k, v in media.items() if k not in ("id", "sha256", "mime_type")
        }
    return message


def test_every_webhook_the_simulator_emits_validates_and_parses(sim, components, webhook_examples):
    server, receiver = sim
    client = server.client()
    sent = client.send_message(TEXT)
    server.state.faults.update({"failed_rate": 1, "failed_code": 131026})
    failed = client.send_message(TEXT)
    server.state.faults.update({"failed_rate": 0})
    inbound = 0
    for name, example in webhook_examples.items():
        value = example["entry"][0]["changes"][0]["value"]
        field = example["entry"][0]["changes"][0]["field"]
        for message in value.get("messages", []):
            response = requests.post(
                f"{server.url}/_sim/customers/{message['from']}/messages",
                json={**_replayable(message), "name": "Sheena Nelson"},
                timeout=10,
            )
            assert response.status_code == 200 and response.json()["gateway_status"] == 200, name
            inbound += 1
        if "groups" in value:
            body = {"field": field, "value": {"groups": value["groups"]}}
            assert requests.post(f"{server.url}/_sim/events", json=body, timeout=10).ok
    wait_for(lambda: len(receiver.statuses(sent.wamid)) == 3 and receiver.statuses(failed.wamid))
    for payload in receiver.payloads:
        assert schema_errors(components, "WebhookPayload", payload) == [], payload
    events = [parse_webhook(p) for p in receiver.payloads]
    messages = [m for e in events for m in e.messages]
    assert len(messages) == inbound == 13
    assert {m.type for m in messages} >= {
        "text", "reaction", "image", "location", "contacts", "unsupported", "button",
        "interactive", "order", "system",
    }  # fmt: skip
    assert len([g for e in events for g in e.groups]) == 3
    (failure,) = receiver.statuses(failed.wamid)
    assert failure["status"] == "failed" and failure["errors"][0]["code"] == 131026


def test_simulated_customer_media_downloads_with_the_announced_sha256(sim):
    server, _ = sim
    client = server.client()
    for kind in ("image", "audio", "video", "document", "sticker"):
        said = requests.post(
            f"{server.url}/_sim/customers/{RECIPIENT}/messages",
            json={"type": kind, kind: {"caption": "look"} if kind in ("image", "video") else {}},
            timeout=10,
        ).json()
        media = said["message"][kind]
        download = client.download_media(
            media["id"], max_bytes=1024 * 1024, expected_sha256=media["sha256"]
        )
        assert download.mime_type == media["mime_type"] and download.content


# -- errors -----------------------------------------------------------------------------------


def _configured(server, **config):
    server.state.configure(config)


ERROR_CASES = [
    # (simulator set-up, error class, code, decision)
    ({"faults": {"throttle_rate": 1, "retry_after": 7}}, errors.ThrottledError, 130429, errors.RETRY_AFTER_DELAY),
    ({"config": {"throughput_per_second": 1}, "burst": 2}, errors.ThrottledError, 130429, errors.RETRY_AFTER_DELAY),
    ({"config": {"pair_limit": True, "pair_burst": 1}, "burst": 2}, errors.ThrottledError, 131056, errors.RETRY_AFTER_DELAY),
    ({"faults": {"error_codes": {"80007": 1}}}, errors.ThrottledError, 80007, errors.RETRY_AFTER_DELAY),
    ({"faults": {"error_rate": 1}}, errors.TransientError, 1, errors.RETRY_LATER),
    ({"faults": {"unavailable_rate": 1}}, errors.TransientError, 2, errors.RETRY_LATER),
    ({"faults": {"error_codes": {"131000": 1}}}, errors.TransientError, 131000, errors.RETRY_LATER),
    ({"body": {**TEXT, "type": "hologram"}}, errors.PermanentError, 100, errors.DEAD_LETTER),
    ({"config": {"not_on_whatsapp": [RECIPIENT]}}, errors.RecipientNotOnWhatsAppError, 131026, errors.DEAD_LETTER),
    ({"config": {"enforce_window": True}}, errors.WindowClosedError, 131047, errors.DEAD_LETTER),
    ({"faults": {"error_codes": {"132001": 1}}}, errors.TemplateError, 132001, errors.DEAD_LETTER),
    ({"token": "EAAwrong-token-0000000000"}, errors.ConfigurationError, 190, errors.ALERT_OPERATOR),
    ({"faults": {"error_codes": {"131031": 1}}}, errors.ConfigurationError, 131031, errors.ALERT_OPERATOR),
    ({"faults": {"error_codes": {"10": 1}}}, errors.ConfigurationError, 10, errors.ALERT_OPERATOR),
]  # fmt: skip


@pytest.mark.parametrize(("setup", "kind", "code", "decision"), ERROR_CASES)
def test_each_error_class_from_a_simulator_response(sim, setup, kind, code, decision):
    server, _ = sim
    server.state.faults.update(setup.get("faults", {}))
    _configured(server, **setup.get("config", {}))
    client = server.client(access_token=setup.get("token", server.config.access_token))
    body = setup.get("body", TEXT)
    for _ in range(setup.get("burst", 1) - 1):
        client.send_message(body)
    with pytest.raises(kind) as info:
        client.send_message(body)
    error = info.value
    assert type(error) is kind and error.code == code and error.decision == decision
    assert error.fbtrace_id and error.http_status >= 400
    if "retry_after" in setup.get("faults", {}):
        assert error.retry_after == 7


def test_timeouts_and_unreachable_servers_are_transient(sim):
    server, _ = sim
    server.state.faults.update({"timeout_rate": 1, "hang_seconds": 1})
    with pytest.raises(errors.GraphTimeoutError) as timeout:
        server.client(timeout=(1, 0.2)).send_message(TEXT)
    assert timeout.value.decision == errors.RETRY_LATER
    closed = SimulatorThread()
    url = closed.url
    closed.close()
    client = server.client()
    client.base_url = url
    with pytest.raises(errors.GraphConnectionError) as refused:
        client.send_message(TEXT)
    assert refused.value.decision == errors.RETRY_LATER
