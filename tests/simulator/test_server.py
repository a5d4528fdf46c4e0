from __future__ import annotations

import pytest

from app.whatsapp import errors
from tests.stack import SimulatorThread

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


def test_unreachable_api_is_a_connection_error():
    from app.whatsapp.client import GraphClient

    client = GraphClient(
        base_url="http://127.0.0.1:9",
        version="v23.0",
        phone_number_id="1",
        access_token="EAAsecret-token-value",
    )
    with pytest.raises(errors.GraphConnectionError) as info:
        client.send_message(TEXT)
    assert "EAAsecret" not in repr(info.value) and info.value.__cause__ is None
