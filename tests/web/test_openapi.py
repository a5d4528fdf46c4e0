"""``/openapi.json`` describes every /v1 route, and real answers match its schemas."""

from __future__ import annotations

import re

import pytest
from jsonschema import Draft202012Validator

from app.api_keys import SCOPES
from app.delivery import dead_letters as dl
from app.delivery.dead_letters import DeadLetterStore
from app.delivery.messages import MessageStore
from app.web import auth
from tests.web.test_messages import AUTH, TEMPLATE, make_client, post


@pytest.fixture
def client(redis_client):
    return make_client()


@pytest.fixture
def spec(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json


def validate(spec: dict, schema: dict, instance) -> None:
    Draft202012Validator({**schema, "components": spec["components"]}).validate(instance)


def response_schema(spec: dict, path: str, method: str, status: int) -> dict:
    answer = spec["paths"][path][method]["responses"][str(status)]
    return answer["content"]["application/json"]["schema"]


def test_it_is_openapi_31_and_covers_every_v1_route(client, spec):
    assert spec["openapi"].startswith("3.1")
    Draft202012Validator.check_schema({"$defs": spec["components"]["schemas"]})
    routes = set()
    for rule in client.application.url_map.iter_rules():
        if rule.rule.startswith("/v1/"):
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", "{id}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routes.add((path, method.lower()))
    described = {(p, m) for p, ops in spec["paths"].items() for m in ops}
    assert routes == described
    assert spec["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


def test_each_operation_names_the_scope_its_view_requires(client, spec):
    adapter = client.application.url_map.bind("localhost")
    per_number = {"sendMessage", "sendMessages", "getMessage", "getConversation"}
    per_number |= {"startHandoff", "endHandoff", "listHandedOffConversations", "answerConversation"}
    per_number |= {"getCustomer", "optOutCustomer", "optInCustomer", "getPricing"}
    per_number |= {"createCampaign", "getCampaign", "pauseCampaign", "resumeCampaign"}
    per_number |= {"cancelCampaign"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            endpoint, _ = adapter.match(path.replace("{id}", "573001234567"), method=method.upper())
            view = client.application.view_functions[endpoint]
            assert operation["security"] == [{"apiKey": [getattr(view, auth.SCOPE_ATTRIBUTE)]}]
            refused = operation["responses"]["403"]["description"]
            assert "insufficient_scope" in refused
            assert ("number_not_allowed" in refused) == (operation["operationId"] in per_number)
    described = spec["components"]["securitySchemes"]["apiKey"]["description"]
    assert all(f"`{scope}`" in described for scope in SCOPES)


def test_real_answers_match_the_schemas(client, spec, redis_client):
    accepted = post(client, TEMPLATE)
    validate(spec, response_schema(spec, "/v1/messages", "post", 202), accepted.json)
    message = client.get(f"/v1/messages/{accepted.json['id']}", headers=AUTH).json
    validate(spec, response_schema(spec, "/v1/messages/{id}", "get", 200), message)
    refused = post(client, {**TEMPLATE, "to": "1"})
    validate(spec, response_schema(spec, "/v1/messages", "post", 422), refused.json)
    batch = post(client, {"messages": [TEMPLATE, TEMPLATE]}, path="/v1/messages/batch")
    validate(spec, response_schema(spec, "/v1/messages/batch", "post", 202), batch.json)
    store = MessageStore(redis_client)
    store.mark_sending(accepted.json["id"], 1)
    DeadLetterStore(redis_client).add(store, accepted.json["id"], dl.PERMANENT_ERROR, {"code": 100})
    listing = client.get("/v1/dead-letters", headers=AUTH).json
    assert listing["dead_letters"]
    validate(spec, response_schema(spec, "/v1/dead-letters", "get", 200), listing)
    letter = client.get(f"/v1/dead-letters/{accepted.json['id']}", headers=AUTH).json
    validate(spec, response_schema(spec, "/v1/dead-letters/{id}", "get", 200), letter)
    unauthorized = client.get("/v1/dead-letters")
    validate(spec, response_schema(spec, "/v1/dead-letters", "get", 401), unauthorized.json)
