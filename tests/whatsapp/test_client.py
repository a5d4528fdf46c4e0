"""The Graph client builds URLs only from ids of the documented shape: a path-like media id, a
malformed phone number id or wamid is refused before any request, so the token goes nowhere else."""

from __future__ import annotations

import pytest

from app.whatsapp.errors import InvalidIdentifierError, PermanentError
from tests.stack import SimulatorThread

HOSTILE_MEDIA_IDS = [
    "../../../_sim/config",
    "..%2F..%2F_sim%2Fconfig",
    "1003383421387256\n",
    "1003383421387256/",
    "/_sim/config",
    "1003383421387256?phone_number_id=1",
    "1003383421387256#x",
    "١٢٣",  # Arabic-Indic digits: digits to str.isdigit, not to Meta
    "",
]


@pytest.fixture
def sim():
    """The simulator, with the path of every request that reaches it."""
    server = SimulatorThread()
    server.paths = []
    wsgi_app = server.app.wsgi_app

    def recording(environ, start_response):
        server.paths.append(environ["PATH_INFO"])
        return wsgi_app(environ, start_response)

    server.app.wsgi_app = recording
    yield server
    server.close()


@pytest.mark.parametrize("media_id", HOSTILE_MEDIA_IDS)
def test_a_malformed_media_id_reaches_no_path(sim, media_id):
    client = sim.client()
    for call in (
        lambda: client.download_media(media_id, max_bytes=1000),
        lambda: client.get_media(media_id),
        lambda: client.delete_media(media_id),
    ):
        with pytest.raises(InvalidIdentifierError) as info:
            call()
        assert info.value.decision == "dead_letter"
        assert isinstance(info.value, PermanentError)  # dead-lettered by the sender, not retried
    assert sim.paths == []
    assert sim.state.requests_seen == 0


@pytest.mark.parametrize("phone_number_id", ["../../_sim/config", "106540352242922\n", "1/2", ""])
def test_a_malformed_phone_number_id_reaches_no_path(sim, phone_number_id):
    client = SimulatorThread.client_for(sim.url, phone_number_id)()
    text = {"messaging_product": "whatsapp", "to": "573001234567", "text": {"body": "Hi"}}
    for call in (
        lambda: client.send_message(text),
        lambda: client.mark_read("wamid.HBgLNTczMDAxMjM0NTY3FQIAEhgg"),
        lambda: client.upload_media(b"\xff\xd8\xff\xe0" + b"x" * 100, mime_type="image/jpeg"),
        lambda: client.get_media("1003383421387256"),
    ):
        with pytest.raises(InvalidIdentifierError):
            call()
    assert sim.paths == []


@pytest.mark.parametrize(
    "wamid", ["wamid.HBgL\n", "wamid.a b", "../wamid.x", "wamid." + "w" * 2000]
)
def test_a_malformed_wamid_is_not_marked_read(sim, wamid):
    with pytest.raises(InvalidIdentifierError):
        sim.client().mark_read(wamid)
    assert sim.paths == [] and not sim.state.read_receipts


def test_the_error_names_the_kind_of_id_never_its_value(sim):
    with pytest.raises(InvalidIdentifierError) as info:
        sim.client().get_media("../../../_sim/config 573001234567")
    assert "media id" in str(info.value)
    assert "_sim" not in str(info.value) and "573001234567" not in str(info.value)
    assert "_sim" not in repr(info.value.to_dict())


def test_valid_ids_still_reach_their_endpoints(sim):
    client = sim.client()
    media_id = client.upload_media(b"\xff\xd8\xff\xe0" + b"x" * 100, mime_type="image/jpeg")
    assert client.get_media(media_id).id == media_id
    number = sim.config.phone_number_id
    assert sim.paths == [f"/v23.0/{number}/media", f"/v23.0/{media_id}"]
