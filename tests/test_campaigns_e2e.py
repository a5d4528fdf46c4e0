"""Templates, opt-out, campaigns and pricing as separate processes: the web app under gunicorn,
a Celery worker on every queue, beat starting the scheduled campaign, the simulator playing
Meta (its templates, its customers, its status webhooks) and ``wa-gateway templates sync``."""

from __future__ import annotations

import datetime as dt
import subprocess
import time

import pytest
import requests

from tests.stack import (
    BIN,
    TEST_CREDENTIALS,
    RedisServer,
    free_port,
    gateway_env,
    start_beat,
    start_simulator,
    start_web,
    start_worker,
    wait_for,
)

API_KEY = "e2e-campaign-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
WABA = TEST_CREDENTIALS["WHATSAPP_BUSINESS_ACCOUNT_ID"]
GRAPH_AUTH = {"Authorization": f"Bearer {TEST_CREDENTIALS['WHATSAPP_ACCESS_TOKEN']}"}
ANA, LUIS, SOFIA = "573001000001", "573001000002", "573001000003"


class Stack:
    def __init__(self, env, simulator_url, web_url):
        self.env, self.simulator_url, self.web_url = env, simulator_url, web_url

    def api(self, method: str, path: str, **kwargs):
        return requests.request(method, f"{self.web_url}{path}", headers=AUTH, timeout=10, **kwargs)

    def sim(self, method: str, path: str, **kwargs):
        return requests.request(method, f"{self.simulator_url}{path}", timeout=10, **kwargs)

    def sent(self) -> list[dict]:
        return [m["body"] for m in self.sim("get", "/_sim/messages").json()["messages"]]

    def create_template(self, name: str, category: str, text: str) -> str:
        response = self.sim(
            "post",
            f"/v23.0/{WABA}/message_templates",
            headers=GRAPH_AUTH,
            json={
                "name": name,
                "language": "es",
                "category": category,
                "components": [{"type": "BODY", "text": text}],
            },
        )
        assert response.status_code == 200, response.text
        return response.json()["id"]

    def templates_cli(self, command: str) -> subprocess.CompletedProcess:
        """``wa-gateway templates <command>`` run as an operator would, with the stack's settings."""
        return subprocess.run(
            [str(BIN / "wa-gateway"), "templates", command],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def template(self, name: str) -> dict:
        templates = self.api("get", "/v1/templates").json()["templates"]
        return next(t for t in templates if t["name"] == name)


@pytest.fixture(scope="module")
def stack():
    redis_server = RedisServer().start()
    sim_port, web_port = free_port(), free_port()
    env = gateway_env(
        redis_server.url,
        f"http://127.0.0.1:{sim_port}",
        GATEWAY_API_KEYS=API_KEY,
        SEND_RATE_LIMIT="20",
    )
    processes = []
    try:
        simulator, simulator_url = start_simulator(
            env, sim_port, f"http://127.0.0.1:{web_port}/webhooks/whatsapp"
        )
        processes.append(simulator)
        web, web_url = start_web(env, web_port)
        processes.append(web)
        processes.append(start_worker(env, concurrency=2))
        processes.append(start_beat(env))
        yield Stack(env, simulator_url, web_url)
    finally:
        for proc in reversed(processes):
            proc.stop()
        redis_server.close()


def test_templates_are_synced_and_follow_metas_webhooks(stack):
    promo = stack.create_template("promo_navidad", "MARKETING", "Hola {{1}}, usa {{2}} hoy")
    aviso = stack.create_template("aviso_envio", "UTILITY", "Tu pedido {{1}} va en camino")
    stack.sim("post", f"/_sim/templates/{promo}/approve")
    synced = stack.templates_cli("sync")
    assert synced.returncode == 0, synced.stderr
    assert "2 templates synced" in synced.stdout
    assert stack.template("promo_navidad")["status"] == "APPROVED"
    assert stack.template("aviso_envio")["status"] == "PENDING"
    stack.sim("post", f"/_sim/templates/{aviso}/reject", json={"reason": "INVALID_FORMAT"})
    wait_for(lambda: stack.template("aviso_envio")["status"] == "REJECTED")
    assert stack.template("aviso_envio")["reason"] == "INVALID_FORMAT"
    listed = stack.templates_cli("list")
    assert "promo_navidad\tes\tAPPROVED\tMARKETING" in listed.stdout


def confirmations(stack, wa_id: str) -> list[dict]:
    return [
        m
        for m in stack.sent()
        if m.get("to") == wa_id and m.get("type") == "text" and "promocionales" in m["text"]["body"]
    ]


def test_a_campaign_skips_the_customer_who_answered_baja(stack):
    approved_promo(stack)
    for wa_id, name in ((ANA, "Ana"), (LUIS, "Luis"), (SOFIA, "Sofía")):
        stack.sim("put", f"/_sim/customers/{wa_id}", json={"name": name})
    sofia_bsuid = stack.sim("get", f"/_sim/customers/{SOFIA}").json()["user_id"]
    stack.sim("post", f"/_sim/customers/{ANA}/messages", json={"text": "¡BAJA!"})
    wait_for(lambda: len(confirmations(stack, ANA)) == 1)
    stack.sim("post", f"/_sim/customers/{ANA}/messages", json={"text": "baja"})
    stack.sim("post", f"/_sim/customers/{ANA}/messages", json={"text": "hola"})
    wait_for(lambda: any(m.get("to") == ANA and "context" in m for m in stack.sent()))
    assert len(confirmations(stack, ANA)) == 1
    ana = stack.api("get", f"/v1/customers/{ANA}").json()
    assert ana["marketing_opt_out"]["source"] == "keyword"

    promo = {
        "to": ANA,
        "type": "template",
        "template": {
            "name": "promo_navidad",
            "language": {"code": "es"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}] * 2}],
        },
    }
    refused = stack.api("post", "/v1/messages", json=promo)
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "opted_out")

    start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
    created = stack.api(
        "post",
        "/v1/campaigns",
        json={
            "name": "Navidad",
            "template": {"name": "promo_navidad", "language": "es"},
            "audience": [
                {"to": ANA, "parameters": ["Ana", "NAVIDAD25"]},
                {"to": LUIS, "parameters": ["Luis", "NAVIDAD25"]},
                {"recipient": sofia_bsuid, "parameters": ["Sofía", "NAVIDAD25"]},
                {"to": "12", "parameters": ["Nadie", "NAVIDAD25"]},
            ],
            "schedule_at": start.isoformat(),
            "rate_share": 0.5,
        },
    )
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert campaign["state"] == "scheduled"

    def done():
        answer = stack.api("get", f"/v1/campaigns/{campaign['id']}").json()
        return answer if answer["state"] == "finished" and answer["counts"]["read"] == 2 else None

    finished = wait_for(done, timeout=60)
    assert finished["counts"] == {
        "queued": 2,
        "sent": 2,
        "delivered": 2,
        "read": 2,
        "failed": 0,
        "opted_out": 1,
        "invalid": 1,
    }
    assert finished["pricing"] == {"marketing": 2}
    templates = [m for m in stack.sent() if m.get("type") == "template"]
    assert sorted(m.get("to") or m.get("recipient") for m in templates) == sorted(
        [LUIS, sofia_bsuid]
    )
    assert time.time() >= start.timestamp()

    today = dt.datetime.now(dt.UTC).date().isoformat()
    rows = stack.api("get", "/v1/analytics/pricing").json()["pricing"]
    marketing = [r for r in rows if r["category"] == "marketing" and r["day"] == today]
    assert [r["messages"] for r in marketing] == [2]
    assert any(r["category"] == "service" and not r["billable"] for r in rows)


def test_metas_marketing_preference_opts_a_customer_out(stack):
    value = {
        "contacts": [{"profile": {"name": "Luis"}, "wa_id": LUIS}],
        "user_preferences": [
            {
                "wa_id": LUIS,
                "detail": "User requested to stop marketing messages",
                "category": "marketing_messages",
                "value": "stop",
                "timestamp": int(time.time()),
            }
        ],
    }
    stack.sim("post", "/_sim/events", json={"field": "user_preferences", "value": value})
    wait_for(
        lambda: (
            (stack.api("get", f"/v1/customers/{LUIS}").json().get("marketing_opt_out") or {}).get(
                "source"
            )
            == "user_preferences"
        )
    )


def approved_promo(stack) -> None:
    """``promo_navidad`` approved and synced, whichever test of the module runs first."""
    templates = stack.api("get", "/v1/templates").json()["templates"]
    if any(t["name"] == "promo_navidad" and t["status"] == "APPROVED" for t in templates):
        return
    promo = stack.create_template("promo_navidad", "MARKETING", "Hola {{1}}, usa {{2}} hoy")
    stack.sim("post", f"/_sim/templates/{promo}/approve")
    synced = stack.templates_cli("sync")
    assert synced.returncode == 0, synced.stderr


def test_a_campaign_paused_resumed_and_over(stack):
    approved_promo(stack)
    audience = [{"to": f"57302{n:07d}", "parameters": ["Ana", "X"]} for n in range(250)]
    created = stack.api(
        "post",
        "/v1/campaigns",
        json={
            "template": {"name": "promo_navidad", "language": "es"},
            "audience": audience,
            "rate_share": 0.05,  # 1 message a second: the second chunk is 200 s away
        },
    ).json()
    path = f"/v1/campaigns/{created['id']}"
    # Generous: the dispatch tasks ride the bulk lane, behind the batches they queued.
    wait_for(lambda: stack.api("get", path).json()["dispatched"] == 200, timeout=90)
    assert stack.api("post", f"{path}/pause").json()["state"] == "paused"
    assert stack.api("post", f"{path}/pause").status_code == 409
    assert stack.api("post", f"{path}/resume").json()["state"] == "running"
    wait_for(lambda: stack.api("get", path).json()["state"] == "finished", timeout=90)
    assert stack.api("get", path).json()["dispatched"] == 250
    cancel = stack.api("post", f"{path}/cancel")
    assert (cancel.status_code, cancel.json()["error"]["code"]) == (409, "invalid_state")
    assert stack.api("get", path).json()["counts"]["queued"] == 250
