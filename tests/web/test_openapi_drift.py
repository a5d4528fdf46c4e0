"""``/openapi.json`` and the views cannot drift apart.

Every documented /v1 operation is called until its answers carry every property the document
names, and each answer is checked against its documented schema made strict: an object that lists
its properties may carry no other, and an object that lists none must say it is open. So a field
added to a record (and returned by a view) fails here until it is documented, and a documented
field no view returns fails here until it is dropped.
"""

from __future__ import annotations

import copy
import re
import time
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from app.api_keys import ApiKeyRegistry
from app.conversations.context import ConversationStore
from app.conversations.customers import CustomerBook, Identity
from app.credentials import generate_key
from app.delivery import dead_letters as dl
from app.delivery.dead_letters import DeadLetterStore
from app.delivery.messages import DELIVERED, SENT, MessageStore
from app.delivery.pricing import count_pricing
from app.delivery.window import CustomerWindows
from app.ops.alerts import AlertEvaluator, AlertThresholds
from app.ops.state import DeploymentState
from app.simulator.meta import status_item
from app.templates import Template, TemplateStore
from app.whatsapp.webhook import parse_webhook
from tests.conversations.helpers import exchange, reply
from tests.stack import envelope
from tests.web.test_messages import AUTH, NUMBER, TEMPLATE, make_client

WA_ID = "573001234567"
PROMO = Template(
    id="1",
    name="promo",
    language="es",
    status="APPROVED",
    category="MARKETING",
    components=[{"type": "BODY", "text": "Hola {{1}}"}],
    quality_score="GREEN",
    reason="NONE",
    updated_at=1.0,
)
SUBSCHEMA_LISTS = ("oneOf", "anyOf", "allOf")


class Recorder:
    """Calls the API like a client and keeps every answer with the operation that gave it."""

    def __init__(self, client):
        self.client = client
        self.adapter = client.application.url_map.bind("localhost")
        self.answers: list[tuple[str, str, int, Any]] = []

    def call(self, method: str, path: str, headers: dict = AUTH, **kwargs: Any):
        response = getattr(self.client, method)(path, headers=headers, **kwargs)
        rule, _ = self.adapter.match(path.split("?")[0], method=method.upper(), return_rule=True)
        template = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", "{id}", rule.rule)
        self.answers.append((template, method, response.status_code, response.get_json()))
        return response


def strict(schema: Any, where: str) -> Any:
    """``schema`` with ``additionalProperties: false`` on every object that lists its properties;
    fails on an object schema that neither lists its properties nor says it is open."""
    if isinstance(schema, list):
        return [strict(item, where) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if "properties" in schema:
        out["properties"] = {
            name: strict(sub, f"{where}.{name}") for name, sub in schema["properties"].items()
        }
    for keyword in ("items", "additionalProperties", *SUBSCHEMA_LISTS):
        if keyword in schema:
            out[keyword] = strict(schema[keyword], where)
    types = schema.get("type")
    is_object = types == "object" or (isinstance(types, list) and "object" in types)
    if is_object and "additionalProperties" not in schema:
        assert "properties" in schema, f"{where}: list the object's properties or mark it open"
        out["additionalProperties"] = False
    return out


def strict_validator(spec: dict, schema: dict, where: str) -> Draft202012Validator:
    """A validator of ``schema`` with it and every component schema made :func:`strict`."""
    components = {name: strict(sub, name) for name, sub in spec["components"]["schemas"].items()}
    return Draft202012Validator({**strict(schema, where), "components": {"schemas": components}})


def documented_properties(spec: dict, schema: dict, where: str, out: set, seen_refs: set) -> None:
    """Every (schema location, property name) reachable from ``schema``."""
    if "$ref" in schema:
        if schema["$ref"] not in seen_refs:
            seen_refs.add(schema["$ref"])
            target = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
            documented_properties(spec, target, schema["$ref"], out, seen_refs)
        return
    for name, sub in schema.get("properties", {}).items():
        out.add((where, name))
        documented_properties(spec, sub, f"{where}.{name}", out, seen_refs)
    if isinstance(schema.get("items"), dict):
        documented_properties(spec, schema["items"], f"{where}[]", out, seen_refs)
    for keyword in SUBSCHEMA_LISTS:
        for sub in schema.get(keyword, []):
            documented_properties(spec, sub, where, out, seen_refs)


def returned_properties(spec: dict, schema: dict, instance: Any, where: str, out: set) -> None:
    """Every (schema location, property name) ``instance`` carries, walked beside ``schema``."""
    if "$ref" in schema:
        target = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        returned_properties(spec, target, instance, schema["$ref"], out)
        return
    if isinstance(instance, dict):
        for name, value in instance.items():
            if name in schema.get("properties", {}):
                out.add((where, name))
                returned_properties(spec, schema["properties"][name], value, f"{where}.{name}", out)
    if isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for item in instance:
            returned_properties(spec, schema["items"], item, f"{where}[]", out)
    for keyword in SUBSCHEMA_LISTS:
        for sub in schema.get(keyword, []):
            returned_properties(spec, sub, instance, where, out)


def response_schema(spec: dict, path: str, method: str, status: int) -> dict | None:
    responses = spec["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} answered {status}, undocumented"
    content = responses[str(status)].get("content")
    return content["application/json"]["schema"] if content else None


def exercise(api: Recorder, redis_client) -> None:
    """Call every documented operation, so that the answers hold every documented property."""
    # Messages: accepted, looked up with an error, a Meta id and an out-of-order status.
    accepted = api.call("post", "/v1/messages", json=TEMPLATE).json["id"]
    store = MessageStore(redis_client)
    store.mark_sending(accepted, 1)
    store.advance(accepted, DELIVERED, wamid="wamid.X")
    store.advance(accepted, SENT)  # late: recorded as ignored
    api.call("post", "/v1/messages/batch", json={"messages": [TEMPLATE, TEMPLATE]})
    api.call("post", "/v1/messages/batch", json={"messages": [TEMPLATE, {"to": "1"}]})
    api.call("post", "/v1/messages", data=b"{", content_type="application/json")
    api.call("get", "/v1/messages/nope")

    # Dead letters: listed, shown, replayed one by one and by filter, purged.
    letter = api.call("post", "/v1/messages", json=TEMPLATE).json["id"]
    store.mark_sending(letter, 1)
    DeadLetterStore(redis_client).add(
        store, letter, dl.PERMANENT_ERROR, {"code": 131026, "title": "Message undeliverable"}
    )
    store.advance(accepted, "failed", error={"code": 131026}, dead_letter_reason="permanent_error")
    api.call("get", f"/v1/messages/{accepted}")
    api.call("get", "/v1/dead-letters?limit=1")
    api.call("get", "/v1/dead-letters?reason=bored")
    api.call("get", f"/v1/dead-letters/{letter}")
    api.call("post", f"/v1/dead-letters/{letter}/replay")
    api.call("post", "/v1/dead-letters/replay", json={"all": True})
    api.call("delete", f"/v1/dead-letters/{letter}")
    api.call("delete", f"/v1/dead-letters/{letter}")

    # Conversations: context with a summary, a profile with a rating, a handoff.
    conversations = ConversationStore(redis_client)
    conversations.record(
        NUMBER, WA_ID, exchange("wamid.1", "Hola, pedido 123", age=600), text="Hola, pedido 123"
    )
    conversations.record(NUMBER, WA_ID, reply("r1", "¡Hola!", age=590))

    def rate(conversation, profile):
        profile.ratings.append({"score": 5, "at": time.time()})
        return True

    conversations.update(NUMBER, WA_ID, rate)
    # The customer later wrote with a business-scoped user id and a username.
    identity = Identity(WA_ID, "CO.13491208655302741918", "CO.ENT.11815799212886844830", "ana")
    CustomerBook(redis_client).learn(NUMBER, identity)
    api.call("get", "/v1/conversations/CO.13491208655302741918")
    api.call("post", f"/v1/conversations/{WA_ID}/handoff", json={"reason": "VIP"})
    api.call("post", f"/v1/conversations/{WA_ID}/handoff")  # already handed off: 200
    api.call("get", f"/v1/conversations/{WA_ID}")
    api.call("get", "/v1/conversations?handoff=active")
    api.call("get", "/v1/conversations?handoff=ended")
    api.call("delete", f"/v1/conversations/{WA_ID}/handoff")
    api.call("get", "/v1/conversations/12")
    # An agent answers: accepted while the window is open, refused once it closed.
    CustomerWindows(redis_client).record_inbound(NUMBER, WA_ID, time.time() - 60)
    api.call("post", f"/v1/conversations/{WA_ID}/messages", json={"text": "Soy Ana", "agent": "Ana"})
    api.call("post", "/v1/conversations/573009999999/messages", json={"text": "Hola"})
    api.call("post", f"/v1/conversations/{WA_ID}/messages", data=b"{")

    # Event subscriptions: created (with its secret), listed, shown, refused, deleted; and an
    # event its receiver refused, dead-lettered.
    subscription = api.call(
        "post",
        "/v1/event-subscriptions",
        json={"url": "http://127.0.0.1:9/hook", "events": ["message.received"]},
    ).json
    api.call("post", "/v1/event-subscriptions", json={"url": "ftp://x", "events": ["x"]})
    api.call("post", "/v1/event-subscriptions", data=b"{")
    api.call("get", "/v1/event-subscriptions")
    api.call("get", f"/v1/event-subscriptions/{subscription['id']}")
    event = {"id": "evt_1", "type": "message.received", "created_at": 1.0, "data": {}}
    error = {"class": "DeliveryFailed", "code": 500, "message": "the receiver answered 500"}
    letter = DeadLetterStore(redis_client).add_event(
        subscription["id"], event, dl.RETRIES_EXHAUSTED, error, attempts=8
    )
    api.call("get", f"/v1/dead-letters/{letter.id}")
    api.call("get", "/v1/dead-letters?direction=event")
    api.call("delete", f"/v1/event-subscriptions/{subscription['id']}")
    api.call("get", f"/v1/event-subscriptions/{subscription['id']}")

    # Refusals: a key without the scope, and one limited to another sending number.
    registry = ApiKeyRegistry(redis_client)
    reader = {"Authorization": "Bearer " + registry.create("reader", ["read"])[1]}
    api.call("post", "/v1/messages", headers=reader, json=TEMPLATE)
    elsewhere = registry.create("elsewhere", ["read"], ["106540352240000"])[1]
    api.call("get", f"/v1/conversations/{WA_ID}", headers={"Authorization": f"Bearer {elsewhere}"})

    # Alerts: one firing, one resolved.
    evaluator = AlertEvaluator(redis_client, AlertThresholds(), [], deployment="prod")
    base = dict(
        unacked=0, active_conversations=0, dead_letters=None, heartbeat_ages={}, window_seconds=300
    )
    evaluator.evaluate(DeploymentState(at=1.0, queue_sizes={"inbound": 5000}, **base))
    evaluator.evaluate(
        DeploymentState(
            at=2.0, queue_sizes={"inbound": 0}, window={"signature_failures": 50.0}, **base
        )
    )
    api.call("get", "/v1/alerts")

    # Templates (synced last: from here on template sends are checked), opt-outs, campaigns.
    TemplateStore(redis_client).replace_all([PROMO])
    api.call("get", "/v1/templates")
    api.call("post", f"/v1/customers/{WA_ID}/opt-out")
    api.call("get", f"/v1/customers/{WA_ID}")
    api.call("post", f"/v1/customers/{WA_ID}/opt-in")
    api.call("post", "/v1/customers/12/opt-in")
    api.call("get", "/v1/customers/573009999999")
    audience = [{"to": WA_ID, "parameters": ["Ana"]}]
    campaign = api.call(
        "post",
        "/v1/campaigns",
        json={
            "name": "Navidad",
            "template": {"name": "promo", "language": "es"},
            "audience": audience,
            "schedule_at": "2099-01-01T00:00:00Z",
        },
    ).json["id"]
    api.call(
        "post",
        "/v1/campaigns",
        json={"template": {"name": "nope", "language": "es"}, "audience": audience},
    )
    api.call("post", "/v1/campaigns", data=b"{", content_type="application/json")
    api.call("get", f"/v1/campaigns/{campaign}")
    api.call("get", "/v1/campaigns/nope")
    api.call("post", f"/v1/campaigns/{campaign}/pause")
    api.call("post", f"/v1/campaigns/{campaign}/resume")
    api.call("post", f"/v1/campaigns/{campaign}/cancel")
    api.call("post", f"/v1/campaigns/{campaign}/cancel")
    api.call("post", f"/v1/campaigns/{campaign}/resume")
    api.call("post", f"/v1/campaigns/{campaign}/pause")

    # Pricing, from a status webhook as Meta sends it.
    status = parse_webhook(
        envelope({"statuses": [status_item("wamid.P", WA_ID, "sent", "marketing")]})
    )
    count_pricing(redis_client, status.statuses[0])
    api.call("get", "/v1/analytics/pricing")
    api.call("get", "/v1/analytics/pricing?from=2026-13-01")


@pytest.fixture
def answers(redis_client, monkeypatch):
    monkeypatch.setenv("GATEWAY_ENCRYPTION_KEYS", generate_key())
    monkeypatch.setenv("EVENT_ALLOW_PRIVATE_URLS", "true")
    api = Recorder(make_client())
    exercise(api, redis_client)
    return api.client.get("/openapi.json").json, api.answers


def test_every_answer_carries_only_documented_properties(answers):
    spec, calls = answers
    for path, method, status, body in calls:
        schema = response_schema(spec, path, method, status)
        if schema is None:
            assert body is None, f"{method.upper()} {path} {status} has an undocumented body"
            continue
        where = f"{method.upper()} {path} {status}"
        validator = strict_validator(spec, schema, where)
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
        assert not errors, f"{where}: {errors}"


def test_every_documented_property_is_returned_by_some_view(answers):
    spec, calls = answers
    documented: set = set()
    returned: set = set()
    seen_refs: set = set()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if "content" in answer:
                    schema = answer["content"]["application/json"]["schema"]
                    where = f"{method.upper()} {path} {status}"
                    documented_properties(spec, schema, where, documented, seen_refs)
    for path, method, status, body in calls:
        schema = response_schema(spec, path, method, status)
        if schema is not None:
            returned_properties(spec, schema, body, f"{method.upper()} {path} {status}", returned)
    missing = sorted(documented - returned)
    assert not missing, f"documented but never returned: {missing}"


def test_every_documented_operation_is_exercised(answers):
    spec, calls = answers
    called = {(path, method) for path, method, _, _ in calls}
    assert called == {(p, m) for p, ops in spec["paths"].items() for m in ops}


def test_an_undocumented_field_fails_the_check(answers):
    spec, calls = answers
    path, method, status, body = next(
        c for c in calls if c[0] == "/v1/messages/{id}" and c[2] == 200
    )
    original, body = body, copy.deepcopy(body)
    body["new_field"] = 1
    validator = strict_validator(spec, response_schema(spec, path, method, status), "test")
    assert validator.is_valid(original)
    assert not validator.is_valid(body)
