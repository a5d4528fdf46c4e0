from __future__ import annotations

import base64
import time

import pytest
import requests

from app.whatsapp import builders, errors
from tests.stack import SimulatorThread, free_port, gateway_env, start_simulator, wait_for

TEXT = {
    "messaging_product": "whatsapp",
    "to": "573001234567",
    "type": "text",
    "text": {"body": "Hi"},
}


@pytest.fixture
def sim():
    server = SimulatorThread()
    yield server
    server.close()


def test_send_answers_meta_shape_with_a_fresh_wamid(sim):
    client = sim.client()
    first, second = client.send_message(TEXT), client.send_message(TEXT)
    assert first.wamid.startswith("wamid.") and first.wamid != second.wamid
    assert first.wa_id == "573001234567"
    assert [m["body"] for m in sim.state.received] == [TEXT, TEXT]


def test_wrong_token_is_meta_error_190(sim):
    with pytest.raises(errors.ConfigurationError) as info:
        sim.client(access_token="EAAwrong-token-000000").send_message(TEXT)
    assert info.value.code == 190 and info.value.http_status == 401
    assert "EAAwrong" not in str(info.value)


def test_malformed_message_is_meta_error_100(sim):
    with pytest.raises(errors.PermanentError) as info:
        sim.client().send_message({"messaging_product": "whatsapp", "type": "text"})
    assert info.value.code == 100


def test_read_receipt_with_typing_indicator(sim):
    sim.client().mark_read("wamid.INBOUND")
    (receipt,) = sim.state.read_receipts
    assert receipt == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.INBOUND",
        "typing_indicator": {"type": "text"},
    }
    assert not sim.state.received


@pytest.mark.parametrize(
    ("faults", "kind", "code"),
    [
        ({"error_rate": 1}, errors.TransientError, 1),
        ({"throttle_rate": 1, "retry_after": 3}, errors.ThrottledError, 130429),
        ({"error_codes": {"131026": 1}}, errors.RecipientNotOnWhatsAppError, 131026),
    ],
)
def test_injected_faults_raise_their_error_class(sim, faults, kind, code):
    sim.state.faults.update(faults)
    with pytest.raises(kind) as info:
        sim.client().send_message(TEXT)
    assert info.value.code == code
    if "retry_after" in faults:
        assert info.value.retry_after == 3


def test_hang_past_the_read_timeout_is_a_timeout_error(sim):
    sim.state.faults.update({"timeout_rate": 1, "hang_seconds": 1})
    with pytest.raises(errors.GraphTimeoutError):
        sim.client(timeout=(1, 0.2)).send_message(TEXT)


def test_sends_to_a_hang_recipient_hang_while_the_others_flow(sim):
    sim.state.faults.update({"hang_recipients": ["573009999999"], "hang_seconds": 1})
    with pytest.raises(errors.GraphTimeoutError):
        sim.client(timeout=(1, 0.2)).send_message({**TEXT, "to": "573009999999"})
    assert sim.client(timeout=(1, 0.2)).send_message(TEXT).wa_id == "573001234567"
    with pytest.raises(ValueError, match="hang_recipients"):
        sim.state.faults.update({"hang_recipients": "573009999999"})


def test_unreachable_api_is_a_connection_error():
    from app.whatsapp.client import GraphClient

    client = GraphClient(
        base_url="http://127.0.0.1:9",
        version="v23.0",
        phone_number_id="106540352242922",
        access_token="EAAsecret-token-value",
    )
    with pytest.raises(errors.GraphConnectionError) as info:
        client.send_message(TEXT)
    assert "EAAsecret" not in repr(info.value) and info.value.__cause__ is None


# -- Meta's rules ------------------------------------------------------------------------------

CUSTOMER = "573001234567"


def say(server, key=CUSTOMER, **message):
    """Customer ``key`` (a number, or a known customer's BSUID) writes to the business."""
    return requests.post(f"{server.url}/_sim/customers/{key}/messages", json=message, timeout=10)


def test_free_form_outside_the_window_is_131047_and_templates_pass(meta):
    server, _ = meta
    client = server.client()
    with pytest.raises(errors.WindowClosedError):
        client.send_message(builders.text(CUSTOMER, "Hola"))
    assert client.send_message(builders.template(CUSTOMER, "hello_world", "en_US")).wamid
    assert say(server, text="Hola").json()["gateway_status"] == 200
    assert client.send_message(builders.text(CUSTOMER, "¿En qué te ayudo?")).wamid


def test_tests_open_and_close_windows(meta):
    server, _ = meta
    client = server.client()
    window = f"{server.url}/_sim/customers/{CUSTOMER}/window"
    assert requests.put(window, json={}, timeout=5).json()["open"] is True
    client.send_message(builders.text(CUSTOMER, "within"))
    assert requests.delete(window, timeout=5).json()["open"] is False
    with pytest.raises(errors.WindowClosedError):
        client.send_message(builders.text(CUSTOMER, "closed"))
    yesterday = time.time() - 25 * 3600
    state = requests.put(window, json={"last_message_at": yesterday}, timeout=5).json()
    assert state["open"] is False and state["closes_at"] == pytest.approx(yesterday + 24 * 3600)
    assert requests.put(window, json={"last_message_at": "soon"}, timeout=5).status_code == 400


def test_numbers_not_on_whatsapp_get_131026(meta):
    server, _ = meta
    server.state.configure({"not_on_whatsapp": ["573009999999"], "enforce_window": False})
    with pytest.raises(errors.RecipientNotOnWhatsAppError):
        server.client().send_message(builders.text("573009999999", "Hola"))
    refused = requests.get(f"{server.url}/_sim/messages", timeout=5).json()["refused"]
    assert refused == {"131026": 1}


def test_refusals_can_arrive_as_failed_statuses_instead(meta):
    server, receiver = meta
    server.state.configure({"refusals_as_statuses": True})
    sent = server.client().send_message(builders.text(CUSTOMER, "Hola"))
    (status,) = wait_for(lambda: receiver.statuses(sent.wamid))
    assert status["status"] == "failed" and status["errors"][0]["code"] == 131047
    assert status["errors"][0]["error_data"]["details"]


def test_throughput_and_pair_limits(meta):
    server, _ = meta
    server.state.configure({"enforce_window": False, "throughput_per_second": 3})
    client = server.client()
    for n in range(3):
        client.send_message(builders.text(f"57300123456{n}", "hi"))
    with pytest.raises(errors.ThrottledError) as throughput:
        client.send_message(builders.text("573001234569", "hi"))
    assert throughput.value.code == 130429
    server.state.configure({"throughput_per_second": 0, "pair_burst": 2})
    client.send_message(builders.text(CUSTOMER, "one"))
    client.send_message(builders.text(CUSTOMER, "two"))
    with pytest.raises(errors.ThrottledError) as pair:
        client.send_message(builders.text(CUSTOMER, "three"))
    assert pair.value.code == 131056
    client.send_message(builders.text("573001234568", "another customer is not limited"))


def test_schema_breaks_are_error_100_naming_the_field(meta):
    server, _ = meta
    four = builders.reply_buttons(CUSTOMER, "Pick", [builders.ReplyButton("a", "A")])
    four["interactive"]["action"]["buttons"] *= 4
    response = requests.post(
        f"{server.url}/v23.0/{server.config.phone_number_id}/messages",
        json=four,
        headers={"Authorization": f"Bearer {server.config.access_token}"},
        timeout=5,
    )
    error = response.json()["error"]
    assert response.status_code == 400 and error["code"] == 100
    assert "interactive.action.buttons[3]" in error["error_data"]["details"]
    assert not server.state.received


# -- statuses ----------------------------------------------------------------------------------


def test_statuses_are_signed_and_in_lifecycle_order(meta):
    server, receiver = meta
    server.state.configure({"enforce_window": False})
    sent = server.client().send_message(builders.text(CUSTOMER, "Hola"))
    statuses = wait_for(lambda: (s := receiver.statuses(sent.wamid)) and len(s) == 3 and s)
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    assert statuses[0]["pricing"]["category"] == "service" and receiver.unsigned == 0


def test_statuses_out_of_order_and_duplicated_on_purpose(meta):
    server, receiver = meta
    server.state.configure({"enforce_window": False})
    server.state.faults.update({"status_order": "reversed", "duplicate_status_rate": 1})
    sent = server.client().send_message(builders.text(CUSTOMER, "Hola"))
    statuses = wait_for(lambda: (s := receiver.statuses(sent.wamid)) and len(s) == 6 and s)
    order = [s["status"] for s in statuses]
    assert sorted(order) == sorted(["sent", "delivered", "read"] * 2)
    assert order.index("read") < order.index("sent")


def test_a_late_answer_lets_the_statuses_arrive_first(meta):
    server, receiver = meta
    server.state.configure({"enforce_window": False})
    server.state.faults.update({"late_answer_rate": 1, "late_answer_seconds": 0.5})
    sent = server.client().send_message(builders.text(CUSTOMER, "Hola"))
    # By the time the answer came back, Meta had already reported the message.
    assert [s["status"] for s in receiver.statuses(sent.wamid)][:1] == ["sent"]


def test_failed_rate_sends_a_failed_status_with_meta_errors(meta):
    server, receiver = meta
    server.state.configure({"enforce_window": False})
    server.state.faults.update({"failed_rate": 1, "failed_code": 131053})
    sent = server.client().send_message(builders.text(CUSTOMER, "Hola"))
    (status,) = wait_for(lambda: receiver.statuses(sent.wamid))
    assert status["status"] == "failed"
    assert status["errors"][0]["code"] == 131053 and status["errors"][0]["title"]


# -- faults and settings -----------------------------------------------------------------------


def test_fault_and_config_changes_are_validated_and_atomic(sim):
    faults = f"{sim.url}/_sim/faults"
    assert requests.put(faults, json={"error_rate": 2}, timeout=5).status_code == 400
    assert (
        requests.put(faults, json={"throttle_rate": 0.5, "nope": 1}, timeout=5).status_code == 400
    )
    assert requests.get(faults, timeout=5).json()["throttle_rate"] == 0
    changed = requests.put(
        faults, json={"latency_ms": 5, "latency_distribution": "exponential"}, timeout=5
    ).json()
    assert changed["latency_distribution"] == "exponential"
    assert requests.put(faults, json={"status_order": "sideways"}, timeout=5).status_code == 400
    config = f"{sim.url}/_sim/config"
    assert requests.put(config, json={"access_token": "x"}, timeout=5).status_code == 400
    assert (
        requests.put(config, json={"throughput_per_second": 5}, timeout=5).json()[
            "throughput_per_second"
        ]
        == 5
    )


def test_slow_answers_and_unavailability(sim):
    sim.state.faults.update({"slow_rate": 1, "slow_seconds": 0.3})
    started = time.monotonic()
    sim.client().send_message(TEXT)
    assert time.monotonic() - started >= 0.3
    sim.state.faults.update({"slow_rate": 0, "unavailable_rate": 1})
    with pytest.raises(errors.TransientError) as info:
        sim.client().send_message(TEXT)
    assert (info.value.code, info.value.http_status) == (2, 503)


# -- simulated customers -----------------------------------------------------------------------


def test_customers_send_their_own_files_and_bad_requests_are_refused(meta):
    server, receiver = meta
    content = b"%PDF-1.4\n%%EOF\n"
    said = say(
        server,
        type="document",
        document={"caption": "Factura"},
        file={
            "content_base64": base64.b64encode(content).decode(),
            "mime_type": "application/pdf",
            "filename": "f.pdf",
        },
    ).json()
    document = said["message"]["document"]
    assert document["filename"] == "f.pdf" and document["caption"] == "Factura"
    download = server.client().download_media(
        document["id"], max_bytes=1000, expected_sha256=document["sha256"]
    )
    assert download.content == content
    assert say(server, "+573001234567", text="x").status_code == 400
    assert say(server, type="image", image={"id": "123"}).status_code == 400
    assert say(server, type="image", image={}, file={"content_base64": "***"}).status_code == 400
    assert say(server, nothing="here").status_code == 400


def test_cli_flags_configure_the_simulator_process():
    port = free_port()
    env = gateway_env("redis://127.0.0.1:1/0", f"http://127.0.0.1:{port}")
    proc, url = start_simulator(
        env,
        port,
        None,
        meta_rules=True,
        faults={"latency_ms": 1},
        extra_args=[
            "--throughput",
            "5",
            "--not-on-whatsapp",
            "573009999999",
            "--media-url-ttl",
            "60",
        ],
    )
    try:
        config = requests.get(f"{url}/_sim/config", timeout=5).json()
        assert config["throughput_per_second"] == 5 and config["media_url_ttl"] == 60
        assert config["not_on_whatsapp"] == ["573009999999"] and config["enforce_window"] is True
        assert requests.get(f"{url}/_sim/faults", timeout=5).json()["latency_ms"] == 1
    finally:
        proc.stop()


def test_the_served_simulator_keeps_connections_and_lets_go_of_abandoned_requests():
    from app.simulator.server import SERVER_THREADS

    port = free_port()
    env = gateway_env("redis://127.0.0.1:1/0", f"http://127.0.0.1:{port}")
    proc, url = start_simulator(env, port, None, faults={"timeout_rate": 1, "hang_seconds": 3600})
    try:
        client = SimulatorThread.client_for(url)
        # More abandoned requests than the server has threads: each must let go of its thread
        # once its client hangs up, or the server would stop answering.
        for _ in range(SERVER_THREADS + 8):
            with pytest.raises(errors.GraphTimeoutError):
                client(timeout=(1, 0.05)).send_message(TEXT)
        requests.put(f"{url}/_sim/faults", json={"timeout_rate": 0}, timeout=5).raise_for_status()
        session = requests.Session()
        sent = [client(session=session).send_message(TEXT).wamid for _ in range(3)]
        assert len(set(sent)) == 3
        stats = session.get(f"{url}/_sim/stats", timeout=5)
        assert stats.headers.get("Connection", "keep-alive") != "close"  # kept alive, as at Meta
        assert stats.json()["received"] == 3  # the abandoned ones never counted as sent
    finally:
        proc.stop()


def test_the_simulator_answers_at_meta_speed_unless_told_otherwise():
    port = free_port()
    env = gateway_env("redis://127.0.0.1:1/0", f"http://127.0.0.1:{port}")
    proc, url = start_simulator(env, port, None, latency_ms=None)
    try:
        faults = requests.get(f"{url}/_sim/faults", timeout=5).json()
    finally:
        proc.stop()
    assert faults["latency_distribution"] == "lognormal"
    assert (faults["latency_ms"], faults["latency_ms"] + faults["latency_jitter_ms"]) == (150, 700)


@pytest.mark.unit
def test_the_lognormal_latency_has_its_median_and_its_tail():
    import random

    from app.cli import latency_model
    from app.simulator.faults import Faults

    faults = Faults()
    faults.update(latency_model(150, 700))
    rng = random.Random(15)
    draws = sorted(faults.latency_seconds(rng) for _ in range(20_000))
    assert 0.14 < draws[10_000] < 0.16
    assert 0.6 < draws[19_800] < 0.8
    assert min(draws) > 0

    faults.update(latency_model(0, 0))
    assert faults.latency_seconds(rng) == 0
    with pytest.raises(ValueError, match="p99"):
        latency_model(200, 100)
