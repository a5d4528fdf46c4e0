from __future__ import annotations

import base64
import hashlib
import time

import pytest
import requests

from app.simulator.samples import SAMPLES
from app.whatsapp import errors, media
from app.whatsapp.media import check_media, read_media_file, sha256_matches
from tests.stack import SimulatorThread

PNG, _, _ = SAMPLES["image"]
PDF, _, _ = SAMPLES["document"]
WEBP, _, _ = SAMPLES["sticker"]


def animated_webp(size: int) -> bytes:
    header = b"RIFF" + (size - 8).to_bytes(4, "little") + b"WEBPVP8X" + b"\x0a\x00\x00\x00"
    header += b"\x02" + b"\x00" * 9  # the animation flag
    return header + b"\x00" * (size - len(header))


@pytest.fixture
def sim():
    server = SimulatorThread()
    yield server
    server.close()


def test_each_allowed_type_passes_with_its_bytes():
    for kind, (content, mime_type, _) in SAMPLES.items():
        assert check_media(content, mime_type).kind == kind
    assert check_media(b"plain words\n", "text/plain").kind == "document"


@pytest.mark.parametrize(
    ("content", "mime_type", "error"),
    [
        (PDF, "image/jpeg", errors.MediaContentMismatchError),  # a renamed file
        (PNG, "image/jpeg", errors.MediaContentMismatchError),
        (b"\x00\x01binary", "text/plain", errors.MediaContentMismatchError),
        (b"GIF89a" + b"\x00" * 20, "image/gif", errors.UnsupportedMediaTypeError),
        (b"MZ" + b"\x00" * 100, None, errors.UnsupportedMediaTypeError),
        (b"", "image/png", errors.MediaContentMismatchError),
        (PNG + b"\x00" * media.IMAGE_MAX_BYTES, "image/png", errors.MediaTooLargeError),
        (WEBP + b"\x00" * media.STICKER_MAX_BYTES, "image/webp", errors.MediaTooLargeError),
        (animated_webp(media.ANIMATED_STICKER_MAX_BYTES + 1), "image/webp", errors.MediaTooLargeError),
    ],
)  # fmt: skip
def test_refusals_each_have_their_own_class(content, mime_type, error):
    with pytest.raises(error) as info:
        check_media(content, mime_type)
    assert type(info.value) is error


def test_animated_stickers_get_the_larger_limit():
    checked = check_media(animated_webp(300 * 1024), "image/webp")
    assert checked.animated and checked.kind == "sticker"


def test_files_are_checked_by_name_and_bytes(tmp_path):
    photo = tmp_path / "photo.png"
    photo.write_bytes(PNG)
    content, checked = read_media_file(photo)
    assert content == PNG and checked.mime_type == "image/png"
    renamed = tmp_path / "invoice.jpg"
    renamed.write_bytes(PDF)
    with pytest.raises(errors.MediaContentMismatchError):
        read_media_file(renamed)
    with pytest.raises(errors.MediaFileMissingError):
        read_media_file(tmp_path / "nowhere.png")
    with pytest.raises(errors.MediaFileMissingError):
        read_media_file(tmp_path)


def test_sha256_matches_hex_and_base64():
    digest = hashlib.sha256(PNG).digest()
    assert sha256_matches(digest.hex(), digest)
    assert sha256_matches(digest.hex().upper(), digest)
    assert sha256_matches(base64.b64encode(digest).decode(), digest)
    assert not sha256_matches(hashlib.sha256(b"other").hexdigest(), digest)
    assert not sha256_matches("not a hash", digest)


def test_upload_get_download_delete_round_trip(sim, tmp_path):
    client = sim.client()
    path = tmp_path / "menu.pdf"
    path.write_bytes(PDF)
    media_id = client.upload_media(path)
    info = client.get_media(media_id)
    assert (info.id, info.mime_type, info.file_size) == (media_id, "application/pdf", len(PDF))
    assert info.sha256 == hashlib.sha256(PDF).hexdigest()
    download = client.download_media(media_id, max_bytes=len(PDF), expected_sha256=info.sha256)
    assert download.content == PDF and download.sha256 == info.sha256
    client.delete_media(media_id)
    with pytest.raises(errors.PermanentError) as info_error:
        client.get_media(media_id)
    assert info_error.value.code == 100 and info_error.value.subcode == 33


def test_refused_files_never_reach_the_api(sim, tmp_path):
    client = sim.client()
    renamed = tmp_path / "photo.jpg"
    renamed.write_bytes(PDF)
    with pytest.raises(errors.MediaContentMismatchError):
        client.upload_media(renamed)
    with pytest.raises(errors.MediaFileMissingError):
        client.upload_media(tmp_path / "missing.png")
    with pytest.raises(errors.MediaTooLargeError):
        client.upload_media(PNG + b"\x00" * media.IMAGE_MAX_BYTES, mime_type="image/png")
    with pytest.raises(errors.UnsupportedMediaTypeError):
        client.upload_media(b"GIF89a" + b"\x00" * 10, mime_type="image/gif")
    assert sim.state.media.get("anything") is None and sim.state.media._bytes == 0


def test_the_simulator_refuses_what_the_client_would_have(sim):
    headers = {"Authorization": f"Bearer {sim.config.access_token}"}
    url = f"{sim.url}/v23.0/{sim.config.phone_number_id}/media"
    renamed = requests.post(
        url,
        headers=headers,
        data={"messaging_product": "whatsapp", "type": "image/jpeg"},
        files={"file": ("a.jpg", PDF, "image/jpeg")},
        timeout=10,
    )
    assert renamed.status_code == 400 and renamed.json()["error"]["code"] == 131053
    no_file = requests.post(
        url, headers=headers, data={"messaging_product": "whatsapp"}, timeout=10
    )
    assert no_file.json()["error"]["code"] == 100


def test_download_cap_and_checksum_are_enforced(sim):
    client = sim.client()
    media_id = client.upload_media(PDF, mime_type="application/pdf")
    with pytest.raises(errors.MediaTooLargeError) as too_large:
        client.download_media(media_id, max_bytes=len(PDF) - 1)
    assert too_large.value.limit == len(PDF) - 1
    with pytest.raises(errors.MediaIntegrityError) as mismatch:
        client.download_media(
            media_id, max_bytes=10_000, expected_sha256=hashlib.sha256(b"x").hexdigest()
        )
    assert mismatch.value.decision == errors.RETRY_LATER


def test_download_cap_holds_while_streaming_when_the_size_is_understated(sim, monkeypatch):
    client = sim.client()
    media_id = client.upload_media(PDF, mime_type="application/pdf")
    real = client.get_media

    def understated(mid):
        info = real(mid)
        return media.MediaInfo(info.id, info.url, info.mime_type, info.sha256, 10)

    monkeypatch.setattr(client, "get_media", understated)
    with pytest.raises(errors.MediaTooLargeError):
        client.download_media(media_id, max_bytes=100)


def test_download_urls_need_the_token_and_expire(sim):
    client = sim.client()
    media_id = client.upload_media(PNG, mime_type="image/png")
    url = client.get_media(media_id).url
    assert requests.get(url, timeout=10).status_code == 401
    auth = {"Authorization": f"Bearer {sim.config.access_token}"}
    assert requests.get(url, headers=auth, timeout=10).content == PNG
    assert requests.get(url.replace("hash=", "hash=0"), headers=auth, timeout=10).status_code == 404
    sim.state.configure({"media_url_ttl": 0})
    expired = client.get_media(media_id).url
    time.sleep(1.1)
    response = requests.get(expired, headers=auth, timeout=10)
    assert response.status_code == 404 and "expired" in response.text


def test_the_token_is_only_sent_over_tls_or_to_the_api_origin(sim):
    client = sim.client()
    media_id = client.upload_media(PNG, mime_type="image/png")
    real = client.get_media
    elsewhere = media.MediaInfo(media_id, "http://attacker.example/x", "image/png", "", 1)
    client.get_media = lambda mid: elsewhere
    with pytest.raises(errors.GraphAPIError):
        client.download_media(media_id, max_bytes=1000)
    client.get_media = real
