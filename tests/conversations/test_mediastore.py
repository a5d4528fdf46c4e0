"""Customer media through one interface: a local directory for one host, and a bucket on a real
S3-compatible server (started by the test) that a second host reads as the first wrote it."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass

import pytest

from app.config import ConfigError
from app.conversations.media import MediaFetcher
from app.conversations.mediastore import (
    LocalMediaStore,
    MediaNotFound,
    MediaPathError,
    S3MediaStore,
    media_store_for,
    sweep_expired_media,
)
from app.conversations.turns import CustomerTurn
from tests.stack import TEST_CREDENTIALS, settings_of, start_s3_server

NUMBER = TEST_CREDENTIALS["WHATSAPP_PHONE_NUMBER_ID"]
CUSTOMER = "573001234567"
JPEG = b"\xff\xd8\xff\xe0" + b"taj mahal" * 100
S3_SECRET = "s3-secret-access-key-never-logged"


@dataclass
class Download:
    content: bytes
    mime_type: str
    sha256: str


class Downloader:
    def download_media(self, media_id, *, max_bytes, expected_sha256=None):
        return Download(JPEG, "image/jpeg", hashlib.sha256(JPEG).hexdigest())


def image_turn(media_id: str = "1003383421387256") -> CustomerTurn:
    return CustomerTurn(
        id="wamid.HBgLNTczMDAxMjM0NTY3FQIAEhgg", wa_id=CUSTOMER, phone_number_id=NUMBER,
        type="image", at=time.time(), text="[image: image/jpeg]",
        structured={"media": {"id": media_id, "mime_type": "image/jpeg"}},
    )  # fmt: skip


def s3_env(endpoint: str, bucket: str) -> dict[str, str]:
    return {
        "MEDIA_STORE": "s3",
        "MEDIA_S3_BUCKET": bucket,
        "MEDIA_S3_ENDPOINT_URL": endpoint,
        "MEDIA_S3_REGION": "us-east-1",
        "MEDIA_S3_ACCESS_KEY_ID": "test-access-key-id",
        "MEDIA_S3_SECRET_ACCESS_KEY": S3_SECRET,
    }


@pytest.fixture(scope="module")
def s3_endpoint():
    proc, url = start_s3_server()
    try:
        yield url
    finally:
        proc.stop()


@pytest.fixture
def bucket(s3_endpoint, request):
    name = f"media-{request.node.name.lower().replace('_', '-')[:40]}"
    store = media_store_for(settings_of(s3_env(s3_endpoint, name)))
    store.client.create_bucket(Bucket=name)
    return name


@pytest.mark.unit
def test_the_local_store_keeps_reads_and_sweeps_files(tmp_path):
    store = LocalMediaStore(tmp_path)
    store.put(f"{NUMBER}/{CUSTOMER}/old.jpg", b"old", "image/jpeg")
    store.put(f"{NUMBER}/{CUSTOMER}/new.jpg", b"new", "image/jpeg")
    ten_days_ago = time.time() - 10 * 86400
    os.utime(tmp_path / NUMBER / CUSTOMER / "old.jpg", (ten_days_ago, ten_days_ago))
    assert sweep_expired_media(store, retention_days=7) == 1
    assert store.get(f"{NUMBER}/{CUSTOMER}/new.jpg") == b"new"
    with pytest.raises(MediaNotFound):
        store.get(f"{NUMBER}/{CUSTOMER}/old.jpg")


@pytest.mark.unit
def test_a_retention_of_zero_days_keeps_everything(tmp_path):
    store = LocalMediaStore(tmp_path)
    store.put(f"{NUMBER}/{CUSTOMER}/a.jpg", b"a", None)
    assert sweep_expired_media(store, retention_days=0, now=time.time() + 10**9) == 0
    assert store.get(f"{NUMBER}/{CUSTOMER}/a.jpg") == b"a"


@pytest.mark.unit
@pytest.mark.parametrize("key", ["../escape/x.jpg", f"{NUMBER}/../../x.jpg", "x.jpg", "/etc/x"])
def test_the_local_store_refuses_keys_that_leave_its_directory(tmp_path, key):
    store = LocalMediaStore(tmp_path / "media")
    with pytest.raises(MediaPathError):
        store.put(key, b"x", None)
    assert list(tmp_path.rglob("*")) == []


@pytest.mark.unit
def test_s3_needs_a_bucket_and_both_halves_of_a_key_pair():
    with pytest.raises(ConfigError, match="MEDIA_S3_BUCKET"):
        settings_of({"MEDIA_STORE": "s3"})
    with pytest.raises(ConfigError, match="MEDIA_S3_SECRET_ACCESS_KEY"):
        settings_of({"MEDIA_STORE": "s3", "MEDIA_S3_BUCKET": "b", "MEDIA_S3_ACCESS_KEY_ID": "id"})


def test_media_one_host_stored_in_the_bucket_is_read_by_another(s3_endpoint, bucket):
    # Two hosts: each builds its own store from the same settings, as each worker does.
    first = media_store_for(settings_of(s3_env(s3_endpoint, bucket)))
    second = media_store_for(settings_of(s3_env(s3_endpoint, bucket)))
    assert isinstance(first, S3MediaStore)
    media = MediaFetcher(lambda number: Downloader(), first, max_bytes=10_000)(image_turn())
    media = media.structured["media"]
    assert media["stored"] is True and media["size"] == len(JPEG)
    assert media["key"] == f"{NUMBER}/{CUSTOMER}/{hashlib.sha256(JPEG).hexdigest()}.jpg"
    assert second.get(media["key"]) == JPEG
    head = second.client.head_object(Bucket=bucket, Key=media["key"])
    assert head["ContentType"] == "image/jpeg"


def test_a_redelivered_download_rewrites_the_same_object(s3_endpoint, bucket):
    store = media_store_for(settings_of(s3_env(s3_endpoint, bucket)))
    fetch = MediaFetcher(lambda number: Downloader(), store, max_bytes=10_000)
    keys = {fetch(image_turn()).structured["media"]["key"] for _ in range(3)}
    listed = store.client.list_objects_v2(Bucket=bucket)["Contents"]
    assert len(keys) == 1 and [entry["Key"] for entry in listed] == list(keys)


def test_the_bucket_sweep_deletes_only_what_is_past_the_retention(s3_endpoint, bucket):
    store = media_store_for(settings_of(s3_env(s3_endpoint, bucket)))
    for index in range(5):
        store.put(f"{NUMBER}/{CUSTOMER}/{index}.jpg", b"x", "image/jpeg")
    assert sweep_expired_media(store, retention_days=1) == 0
    # Seen from two days on, all five are past a one-day retention.
    assert sweep_expired_media(store, retention_days=1, now=time.time() + 2 * 86400) == 5
    assert store.client.list_objects_v2(Bucket=bucket).get("Contents", []) == []
    with pytest.raises(MediaNotFound):
        store.get(f"{NUMBER}/{CUSTOMER}/0.jpg")


def test_a_bucket_that_fails_records_the_error_and_never_the_secret(s3_endpoint, caplog):
    # No such bucket: the download is recorded as not stored, the message goes on.
    store = media_store_for(settings_of(s3_env(s3_endpoint, "no-such-bucket")))
    with caplog.at_level(logging.DEBUG):
        media = MediaFetcher(lambda number: Downloader(), store, max_bytes=10_000)(image_turn())
    media = media.structured["media"]
    assert media["stored"] is False and "NoSuchBucket" in media["error"]
    assert S3_SECRET not in media["error"] and S3_SECRET not in caplog.text
    assert S3_SECRET not in repr(settings_of(s3_env(s3_endpoint, "b")))
