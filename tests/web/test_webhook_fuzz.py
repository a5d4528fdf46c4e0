"""Hostile input against the webhook receiver: every case gets its exact status, never a 5xx."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.config import get_settings
from app.web import create_app
from app.web.webhooks import MAX_JSON_DEPTH, json_depth
from app.whatsapp.signature import SIGNATURE_HEADER, sign
from tests.fuzz import fuzz_settings, json_values
from tests.stack import TEST_CREDENTIALS

SECRET = TEST_CREDENTIALS["WHATSAPP_WEBHOOK_SECRET"]
URL = "/webhooks/whatsapp"


@pytest.fixture(scope="module")
def client():
    return create_app({"SETTINGS": get_settings(), "TESTING": True}).test_client()


def expected_status(body: bytes) -> int:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return 400
    if not isinstance(payload, dict) or json_depth(payload) > MAX_JSON_DEPTH:
        return 400
    return 200


def post_signed(client, body: bytes):
    return client.post(URL, data=body, headers={SIGNATURE_HEADER: sign(body, SECRET)})


@fuzz_settings
@given(body=st.binary(max_size=2000), header=st.one_of(st.none(), st.text(max_size=80)))
def test_unsigned_or_badly_signed_bytes_are_401(client, body, header):
    headers = {SIGNATURE_HEADER: header} if header is not None else {}
    try:
        response = client.post(URL, data=body, headers=headers)
    except ValueError:  # werkzeug's test client refuses header values with newlines itself
        return
    assert response.status_code == 401


@fuzz_settings
@given(body=st.binary(max_size=2000))
def test_signed_random_bytes_get_their_exact_status(client, body):
    assert post_signed(client, body).status_code == expected_status(body)


@fuzz_settings
@given(value=json_values)
def test_signed_json_of_any_shape_gets_its_exact_status(client, value):
    body = json.dumps(value).encode()
    assert post_signed(client, body).status_code == expected_status(body)


@fuzz_settings
@given(cut=st.integers(min_value=0, max_value=400), example=st.sampled_from(range(16)))
def test_truncated_meta_payloads_are_400(client, webhook_examples, cut, example):
    body = json.dumps(list(webhook_examples.values())[example]).encode()
    truncated = body[: max(0, len(body) - 1 - cut)]
    assert post_signed(client, truncated).status_code == 400


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1000, 100_000])
def test_deeply_nested_json_is_400(client, depth):
    body = ('{"a":' * depth + "1" + "}" * depth).encode()
    response = post_signed(client, body)
    assert response.status_code == 400
    assert response.json["error"]["code"] in ("too_deep", "invalid_json")


def test_huge_strings_and_arrays_under_the_size_limit_are_accepted(client):
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "x" * 1_000_000}] + [{}] * 50_000,
    }
    assert post_signed(client, json.dumps(payload).encode()).status_code == 200


def test_repeated_signature_headers_are_ambiguous_and_refused(client, redis_client):
    body = b'{"object": "whatsapp_business_account", "entry": [], "n": 1}'
    good, bad = sign(body, SECRET), sign(body, "another-secret-123")
    for headers in (
        [(SIGNATURE_HEADER, good), (SIGNATURE_HEADER, bad)],
        [(SIGNATURE_HEADER, good), (SIGNATURE_HEADER, good)],
    ):
        assert client.post(URL, data=body, headers=headers).status_code == 401
    assert redis_client.llen("inbound") == 0


@fuzz_settings
@given(data=st.data())
def test_meta_payloads_with_wrong_types_anywhere_are_accepted(client, webhook_examples, data):
    payload = copy.deepcopy(data.draw(st.sampled_from(list(webhook_examples.values()))))
    _mutate(payload, data)
    body = json.dumps(payload).encode()
    assert post_signed(client, body).status_code == expected_status(body)


def _mutate(payload, data) -> None:
    """Replace one randomly chosen value, at any depth, by an arbitrary JSON value."""
    node = payload
    while True:
        keys = list(node.keys()) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return
        key = data.draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, (dict, list)) and child and data.draw(st.booleans()):
            node = child
            continue
        node[key] = data.draw(json_values)
        return
