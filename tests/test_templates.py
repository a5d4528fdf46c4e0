"""Kept templates: synced page by page from the simulator over HTTP, updated by Meta's template
webhooks (payloads written from Meta's field tables, in tests/data/templates), and the check a
template send must pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.conversations.inbound import handle_webhook
from app.templates import (
    Template,
    TemplateRefused,
    TemplateStore,
    check_send,
    sync,
)
from app.whatsapp.errors import GraphAPIError
from tests.stack import SimulatorThread

pytestmark = pytest.mark.any_redis

DATA = Path(__file__).parent / "data" / "templates"
WABA = "102290129340398"

PROMO = Template(
    id="806312974732579",
    name="promo_navidad",
    language="es",
    status="PENDING",
    category="MARKETING",
    components=[
        {"type": "HEADER", "format": "IMAGE"},
        {"type": "BODY", "text": "Hola {{1}}, usa {{2}} antes del {{1}}"},
        {
            "type": "BUTTONS",
            "buttons": [
                {"type": "QUICK_REPLY", "text": "No me interesa"},
                {"type": "URL", "text": "Ver", "url": "https://shop.example/{{1}}"},
            ],
        },
    ],
)


def payload(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def send(components: list | None = None, name: str = "promo_navidad", language: str = "es"):
    template: dict = {"name": name, "language": {"code": language}}
    if components is not None:
        template["components"] = components
    return template


GOOD = [
    {"type": "header", "parameters": [{"type": "image", "image": {"id": "1234"}}]},
    {
        "type": "body",
        "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "X"}],
    },
    {
        "type": "button",
        "sub_type": "url",
        "index": 1,
        "parameters": [{"type": "text", "text": "a"}],
    },
]


def test_placeholders_are_counted_per_component_once_each():
    assert PROMO.expected_parameters() == {"header": 1, "body": 2, "button:1": 1}


def test_before_any_sync_every_template_send_passes_to_meta(redis_client):
    assert check_send(TemplateStore(redis_client), send([])) is None


def test_after_a_sync_a_send_must_fit_an_approved_template(redis_client):
    store = TemplateStore(redis_client)
    store.replace_all([Template(**{**PROMO.to_dict(), "status": "APPROVED"})])
    assert check_send(store, send(GOOD)).name == "promo_navidad"
    refusals = {
        "unknown": send(GOOD, name="other"),
        "other language": send(GOOD, language="en_US"),
        "body short": send(
            [GOOD[0], {**GOOD[1], "parameters": GOOD[1]["parameters"][:1]}, GOOD[2]]
        ),
        "no header": send(GOOD[1:]),
        "no url parameter": send(GOOD[:2]),
        "extra component": send([*GOOD, {"type": "button", "sub_type": "url", "index": 0}]),
    }
    for case, template in refusals.items():
        with pytest.raises(TemplateRefused) as refused:
            check_send(store, template)
        assert refused.value.field.startswith("template."), case


def test_a_template_not_approved_is_refused(redis_client):
    store = TemplateStore(redis_client)
    store.replace_all([PROMO])
    with pytest.raises(TemplateRefused, match="PENDING, not APPROVED"):
        check_send(store, send(GOOD))


def webhook(redis_client, name: str) -> None:
    handle_webhook(payload(name), redis_client=redis_client, enqueue_turn=lambda turn: None)


def test_metas_template_webhooks_update_the_kept_template(redis_client):
    store = TemplateStore(redis_client)
    store.replace_all([PROMO])
    webhook(redis_client, "status_approved.json")
    assert store.get("promo_navidad", "es").status == "APPROVED"
    webhook(redis_client, "quality_update.json")
    assert store.get("promo_navidad", "es").quality_score == "YELLOW"
    webhook(redis_client, "category_impending.json")  # announced, not done yet
    assert store.get("promo_navidad", "es").category == "MARKETING"
    webhook(redis_client, "category_update.json")
    assert store.get("promo_navidad", "es").category == "UTILITY"
    webhook(redis_client, "status_paused.json")
    assert store.get("promo_navidad", "es").status == "PAUSED"
    with pytest.raises(TemplateRefused, match="PAUSED"):
        check_send(store, send(GOOD))


def test_a_webhook_about_a_template_never_synced_changes_nothing(redis_client):
    webhook(redis_client, "status_approved.json")
    assert TemplateStore(redis_client).all() == []


@pytest.mark.real_redis(reason="the simulator is a real HTTP server; one run is enough")
def test_sync_reads_every_page_of_the_simulators_templates(redis_client):
    sim = SimulatorThread(business_account_id=WABA)
    try:
        client = sim.client()
        for n in range(30):
            client.request(
                "POST",
                f"{WABA}/message_templates",
                json={
                    "name": f"aviso_{n:02d}",
                    "language": "es",
                    "category": "UTILITY",
                    "components": [{"type": "BODY", "text": "Pedido {{1}} listo"}],
                },
            )
        pages = []

        def list_page(after):
            pages.append(after)
            return client.list_templates(WABA, after, limit=25)

        store = TemplateStore(redis_client)
        store.replace_all([PROMO])  # a template the account no longer has is dropped
        synced = sync(store, list_page)
        assert len(synced) == 30 and len(pages) == 2 and pages[0] is None
        assert [t.name for t in store.all()] == [f"aviso_{n:02d}" for n in range(30)]
        assert store.get("aviso_00", "es").status == "PENDING"
        assert store.synced_at() is not None
    finally:
        sim.close()


def test_the_simulator_refuses_a_wrong_account_and_a_bad_template(redis_client):
    sim = SimulatorThread(business_account_id=WABA)
    try:
        client = sim.client()
        with pytest.raises(GraphAPIError):
            client.list_templates("999999999")
        with pytest.raises(GraphAPIError):
            client.request(
                "POST",
                f"{WABA}/message_templates",
                json={"name": "Bad Name", "language": "es", "category": "MARKETING"},
            )
        assert client.list_templates(WABA)["data"] == []
    finally:
        sim.close()
