"""The /v1 API against its own /openapi.json: generated requests (valid and invalid) never get a
server error or an answer that breaks the documented schema.

Two of schemathesis's default checks are left out on purpose: the API ignores query parameters
and headers it does not know (``negative_data_rejection`` calls that accepting bad data), and a
request that passes the schema may still be refused for a domain reason, such as a phone number
that is well formed but not a real number (``positive_data_acceptance``). And
``allow_header_conformance`` wants ``Allow`` to list one path's methods exactly, while
``/v1/dead-letters/replay`` (POST) is also ``/v1/dead-letters/{id}`` (GET, DELETE) with the id
"replay", as the API's paths were specified; Flask also lists HEAD wherever GET is."""

from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from app.config import get_settings
from app.web import create_app

API_KEY = "schema-test-key-0123456789"
EXAMPLES = int(os.environ.get("SCHEMA_EXAMPLES", 25))

app = create_app({"SETTINGS": get_settings(), "GATEWAY_API_KEYS": API_KEY, "TESTING": True})
schema = schemathesis.openapi.from_wsgi("/openapi.json", app)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_v1_api_conforms_to_its_own_schema(case):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {API_KEY}"},
        excluded_checks=[
            checks.negative_data_rejection,
            checks.positive_data_acceptance,
            checks.allow_header_conformance,
        ],
    )
