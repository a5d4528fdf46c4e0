"""Customer media is stored only under ``MEDIA_DIR``, in a folder named by validated ids: a
webhook whose sender or business number looks like a path stores nothing, anywhere."""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.conversations.inbound import handle_webhook
from app.conversations.media import MediaFetcher
from app.conversations.mediastore import LocalMediaStore
from app.conversations.turns import CustomerTurn
from tests.stack import TEST_CREDENTIALS, text_webhook

NUMBER = TEST_CREDENTIALS["WHATSAPP_PHONE_NUMBER_ID"]
CUSTOMER = "573001234567"
USER_ID = "US.13491208655302741918"
JPEG = b"\xff\xd8\xff\xe0" + b"taj mahal" * 100
MEDIA_ID = "1003383421387256"


@dataclass
class Download:
    content: bytes
    mime_type: str
    sha256: str


class Downloader:
    """Hands out ``JPEG`` for any media id, and notes each call (each would spend the token)."""

    def __init__(self):
        self.calls: list[str] = []

    def download_media(self, media_id, *, max_bytes, expected_sha256=None):
        self.calls.append(media_id)
        return Download(JPEG, "image/jpeg", hashlib.sha256(JPEG).hexdigest())


def media_dir_in(root: Path) -> Path:
    """The media directory, deep enough in ``root`` that every escape below lands in ``root``."""
    return root / "srv" / "data" / "media"


def hostile_ids(root: Path) -> list[str]:
    """Sender ids that name a place outside the media directory when used as a path."""
    return [
        "../../escape",
        "../../../../tmp/x",
        str(root / "absolute"),
        f"{CUSTOMER}/../../../escape",
        "..",
        ".",
        f"{CUSTOMER}\n",
        "US.ENT./../../escape",
    ]


def everything_under(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def escapes(root: Path) -> list[Path]:
    """Where each hostile id would have led from the media folder of a number."""
    folder = media_dir_in(root) / NUMBER
    return [(folder / customer).resolve() for customer in hostile_ids(root)]


def turn(customer: str, phone_number_id: str = NUMBER) -> CustomerTurn:
    digest = base64.b64encode(hashlib.sha256(JPEG).digest()).decode()
    return CustomerTurn(
        id="wamid.HBgLNTczMDAxMjM0NTY3FQIAEhgg",
        wa_id=CUSTOMER,
        phone_number_id=phone_number_id,
        type="image",
        at=time.time(),
        text="[image]",
        structured={"media": {"kind": "image", "id": MEDIA_ID, "sha256": digest}},
        customer=customer,
    )


@pytest.fixture
def media_dir(tmp_path):
    return media_dir_in(tmp_path)


@pytest.mark.unit
def test_a_customer_id_that_is_a_path_stores_nothing_anywhere(tmp_path, media_dir):
    downloader = Downloader()
    fetch = MediaFetcher(lambda number: downloader, LocalMediaStore(media_dir), max_bytes=10_000)
    for customer in hostile_ids(tmp_path):
        media = fetch(turn(customer)).structured["media"]
        assert media["stored"] is False
        assert media["error"].startswith("MediaPathError: ")
        assert customer not in media["error"]  # the id may be a phone number: never echoed
    assert downloader.calls == []  # refused before any download: the token went nowhere
    assert everything_under(tmp_path) == set()
    assert not any(place.exists() for place in escapes(tmp_path))  # inside tmp_path: none


@pytest.mark.unit
@pytest.mark.parametrize("number", ["../../escape", "{root}/absolute", "1065403522\n", ""])
def test_a_business_number_that_is_a_path_stores_nothing(tmp_path, media_dir, number):
    number = number.format(root=tmp_path)
    downloader = Downloader()
    fetch = MediaFetcher(lambda number: downloader, LocalMediaStore(media_dir), max_bytes=10_000)
    media = fetch(turn(CUSTOMER, phone_number_id=number)).structured["media"]
    assert media["stored"] is False and media["error"].startswith("MediaPathError: ")
    assert downloader.calls == [] and everything_under(tmp_path) == set()


@pytest.mark.unit
def test_a_media_dir_reached_through_a_symlink_outside_is_refused(tmp_path, media_dir):
    # A folder planted as a symlink (by an earlier bug, or by hand) must not be followed out.
    outside = tmp_path / "outside"
    outside.mkdir()
    (media_dir / NUMBER).mkdir(parents=True)
    (media_dir / NUMBER / CUSTOMER).symlink_to(outside, target_is_directory=True)
    fetch = MediaFetcher(lambda number: Downloader(), LocalMediaStore(media_dir), max_bytes=10_000)
    media = fetch(turn(CUSTOMER)).structured["media"]
    assert media["stored"] is False and media["error"].startswith("MediaPathError: ")
    assert list(outside.iterdir()) == []


@pytest.mark.unit
@pytest.mark.parametrize("customer", [CUSTOMER, USER_ID, "US.ENT.11815799212886844830"])
def test_phones_and_business_scoped_ids_are_stored_in_their_folder(media_dir, customer):
    fetch = MediaFetcher(lambda number: Downloader(), LocalMediaStore(media_dir), max_bytes=10_000)
    media = fetch(turn(customer)).structured["media"]
    assert media["stored"] is True
    path = media_dir / media["key"]
    assert path.parent == media_dir / NUMBER / customer and path.read_bytes() == JPEG


def image_webhook(sender: str, media_id: str = MEDIA_ID) -> dict:
    payload = text_webhook(CUSTOMER, "x")
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = sender
    message = value["messages"][0]
    del message["text"]
    message["from"] = sender
    message["type"] = "image"
    message["image"] = {
        "id": media_id,
        "mime_type": "image/jpeg",
        "sha256": base64.b64encode(hashlib.sha256(JPEG).digest()).decode(),
    }
    return payload


def test_a_webhook_from_a_path_creates_nothing_outside_the_media_dir(redis_client, tmp_path):
    media_dir = media_dir_in(tmp_path)
    downloader = Downloader()
    fetch = MediaFetcher(lambda number: downloader, LocalMediaStore(media_dir), max_bytes=10_000)
    for sender in hostile_ids(tmp_path):
        try:
            handle_webhook(
                image_webhook(sender),
                redis_client=redis_client,
                enqueue_turn=lambda turn: None,
                fetch_media=fetch,
            )
        except Exception:  # noqa: BLE001 - refusing the message outright is fine too
            pass
    assert downloader.calls == []
    assert everything_under(tmp_path) == set()
    assert not any(place.exists() for place in escapes(tmp_path))  # inside tmp_path: none


def test_a_webhook_from_a_customer_stores_their_image(redis_client, tmp_path):
    media_dir = media_dir_in(tmp_path)
    turns: list[dict] = []
    fetch = MediaFetcher(lambda number: Downloader(), LocalMediaStore(media_dir), max_bytes=10_000)
    handle_webhook(
        image_webhook(CUSTOMER),
        redis_client=redis_client,
        enqueue_turn=turns.append,
        fetch_media=fetch,
    )
    (stored,) = turns
    assert (media_dir / stored["structured"]["media"]["key"]).parent == media_dir / NUMBER / CUSTOMER
