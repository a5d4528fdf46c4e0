"""Templates, opt-outs, campaigns and pricing through the API in-process: each refusal with
its exact status and code, and nothing accepted lost or half-made."""

from __future__ import annotations

import json

import pytest

from app.campaigns import CampaignStore
from app.conversations.optout import OptOutBook
from app.delivery.pricing import count_pricing
from app.simulator.meta import status_item
from app.templates import Template, TemplateStore
from app.whatsapp.webhook import parse_webhook
from tests.stack import envelope, queued_tasks
from tests.web.test_messages import AUTH, NUMBER, make_client

CUSTOMER = "573001234567"
PROMO = Template(
    id="1",
    name="promo",
    language="es",
    status="APPROVED",
    category="MARKETING",
    components=[{"type": "BODY", "text": "Hola {{1}}"}],
)
AVISO = Template(**{**PROMO.to_dict(), "id": "2", "name": "aviso", "category": "UTILITY"})
DRAFT = Template(**{**PROMO.to_dict(), "id": "3", "name": "draft", "status": "REJECTED"})


@pytest.fixture
def client(redis_client):
    TemplateStore(redis_client).replace_all([PROMO, AVISO, DRAFT])
    return make_client()


def send(client, name, parameters=("Ana",), to=CUSTOMER):
    components = [{"type": "body", "parameters": [{"type": "text", "text": p} for p in parameters]}]
    body = {
        "to": to,
        "type": "template",
        "template": {"name": name, "language": {"code": "es"}, "components": components},
    }
    return client.post("/v1/messages", data=json.dumps(body), headers=AUTH)


def test_templates_are_listed(client):
    answer = client.get("/v1/templates", headers=AUTH).json
    assert [t["name"] for t in answer["templates"]] == ["aviso", "draft", "promo"]
    assert answer["synced_at"].endswith("Z")


def test_a_template_send_must_fit_an_approved_template(client, redis_client):
    assert send(client, "promo").status_code == 202
    for name, parameters in [("draft", ("Ana",)), ("nope", ("Ana",)), ("promo", ("Ana", "B"))]:
        response = send(client, name, parameters)
        assert response.status_code == 422, name
        assert response.json["error"]["code"] == "template_invalid"
    assert len(queued_tasks(redis_client, "send.normal")) == 1


def test_a_marketing_template_to_an_opted_out_customer_is_refused(client):
    client.post(f"/v1/customers/{CUSTOMER}/opt-out", headers=AUTH)
    response = send(client, "promo")
    assert (response.status_code, response.json["error"]["code"]) == (422, "opted_out")
    assert response.json["error"]["field"] == "to"
    assert send(client, "aviso").status_code == 202  # utility still goes
    promo = {
        "to": CUSTOMER,
        "type": "template",
        "template": {
            "name": "promo",
            "language": {"code": "es"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}],
        },
    }
    batch = client.post(
        "/v1/messages/batch", data=json.dumps({"messages": [promo, promo]}), headers=AUTH
    )
    assert batch.status_code == 422
    assert [e["code"] for e in batch.json["error"]["errors"]] == ["opted_out", "opted_out"]
    client.post(f"/v1/customers/{CUSTOMER}/opt-in", headers=AUTH)
    assert send(client, "promo").status_code == 202


def test_a_customer_shows_their_opt_out(client, redis_client):
    assert client.get(f"/v1/customers/{CUSTOMER}", headers=AUTH).status_code == 404
    assert client.get("/v1/customers/12", headers=AUTH).status_code == 400
    answer = client.post(f"/v1/customers/{CUSTOMER}/opt-out", headers=AUTH).json
    assert answer["marketing_opt_out"]["source"] == "api"
    shown = client.get(f"/v1/customers/{CUSTOMER}", headers=AUTH).json
    assert shown["customer"]["wa_id"] == CUSTOMER and shown["phone_number_id"] == NUMBER
    assert OptOutBook(redis_client).is_opted_out(NUMBER, CUSTOMER)


def post_campaign(client, body):
    return client.post("/v1/campaigns", data=json.dumps(body), headers=AUTH)


CAMPAIGN = {
    "name": "Navidad",
    "template": {"name": "promo", "language": "es"},
    "audience": [
        {"to": CUSTOMER, "parameters": ["Ana"]},
        {"recipient": "CO.1234", "parameters": ["Luis"]},
    ],
}


def test_a_campaign_is_created_and_its_first_chunk_queued_on_the_bulk_lane(client, redis_client):
    response = post_campaign(client, CAMPAIGN)
    assert response.status_code == 201
    campaign = response.json
    assert (campaign["state"], campaign["audience"], campaign["category"]) == (
        "running",
        2,
        "MARKETING",
    )
    assert queued_tasks(redis_client, "send.bulk")[0][:2] == (
        "campaigns.dispatch_campaign",
        [campaign["id"], 0],
    )
    assert client.get(f"/v1/campaigns/{campaign['id']}", headers=AUTH).json["id"] == campaign["id"]


def test_a_scheduled_campaign_waits(client, redis_client):
    response = post_campaign(client, {**CAMPAIGN, "schedule_at": "2099-01-01T00:00:00+00:00"})
    assert response.json["state"] == "scheduled"
    assert response.json["schedule_at"] == "2099-01-01T00:00:00Z"
    assert queued_tasks(redis_client, "send.bulk") == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({**CAMPAIGN, "template": {"name": "draft", "language": "es"}}, 422, "template_invalid"),
        ({**CAMPAIGN, "audience": []}, 422, "invalid_campaign"),
        ({**CAMPAIGN, "rate_share": 2}, 422, "invalid_campaign"),
        ({**CAMPAIGN, "schedule_at": "tomorrow"}, 422, "invalid_campaign"),
        ([CAMPAIGN], 422, "invalid_campaign"),
    ],
)
def test_a_bad_campaign_is_refused_and_nothing_kept(client, redis_client, body, status, code):
    response = post_campaign(client, body)
    assert (response.status_code, response.json["error"]["code"]) == (status, code)
    assert redis_client.keys("wa:campaign:*") == []


def test_a_campaign_body_that_is_not_json_is_400(client):
    response = client.post("/v1/campaigns", data=b"{", headers=AUTH)
    assert (response.status_code, response.json["error"]["code"]) == (400, "invalid_json")


def test_pause_resume_cancel_and_their_conflicts(client, redis_client):
    campaign = post_campaign(client, {**CAMPAIGN, "schedule_at": "2099-01-01T00:00:00Z"}).json["id"]

    def act(action):
        return client.post(f"/v1/campaigns/{campaign}/{action}", headers=AUTH)

    assert act("resume").status_code == 409
    assert act("pause").json["state"] == "paused"
    assert act("resume").json["state"] == "running"
    assert act("cancel").json["state"] == "cancelled"
    for action in ("pause", "resume", "cancel"):
        response = act(action)
        assert (response.status_code, response.json["error"]["code"]) == (409, "invalid_state")
    assert client.post("/v1/campaigns/nope/pause", headers=AUTH).status_code == 404
    assert CampaignStore(redis_client).get(campaign).state == "cancelled"


def test_pricing_is_reported_per_day_number_and_category(client, redis_client):
    item = status_item("wamid.P1", CUSTOMER, "sent", "marketing")
    item["timestamp"] = "1780000000"  # 2026-05-28
    count_pricing(redis_client, parse_webhook(envelope({"statuses": [item]})).statuses[0])
    answer = client.get("/v1/analytics/pricing?from=2026-05-01&to=2026-05-31", headers=AUTH).json
    assert answer["pricing"] == [
        {
            "day": "2026-05-28",
            "phone_number_id": NUMBER,
            "category": "marketing",
            "billable": True,
            "pricing_model": "PMP",
            "messages": 1,
        }
    ]
    for query in (
        "from=2026-05-31&to=2026-05-01",
        "from=2026-1-01",
        "from=2025-01-01&to=2026-01-01",
        "phone_number_id=abc",
    ):
        response = client.get(f"/v1/analytics/pricing?{query}", headers=AUTH)
        assert (response.status_code, response.json["error"]["code"]) == (400, "invalid_parameter")


def test_pricing_reaches_back_no_further_than_the_first_day_there_is(client):
    response = client.get("/v1/analytics/pricing?to=0001-01-05", headers=AUTH)
    assert response.status_code == 200
    assert (response.json["from"], response.json["to"]) == ("0001-01-01", "0001-01-05")


def test_a_batch_reads_its_template_once_and_still_checks_every_message(
    client, redis_client, monkeypatch
):
    reads = []
    get = TemplateStore.get
    monkeypatch.setattr(TemplateStore, "get", lambda self, *a: reads.append(a) or get(self, *a))
    components = [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}]
    template = {"name": "aviso", "language": {"code": "es"}, "components": components}
    messages = [
        {"to": f"57300123456{i}", "type": "template", "template": template} for i in range(5)
    ]
    batch = client.post("/v1/messages/batch", data=json.dumps({"messages": messages}), headers=AUTH)
    assert batch.status_code == 202
    assert reads == [("aviso", "es")]
    messages[3]["template"] = {**template, "components": []}
    batch = client.post("/v1/messages/batch", data=json.dumps({"messages": messages}), headers=AUTH)
    assert batch.status_code == 422
    assert [e["index"] for e in batch.json["error"]["errors"]] == [3]
