"""Where customer media is kept once downloaded and checked: one small interface, two places.

- :class:`LocalMediaStore`: a directory (``MEDIA_DIR``), the embedded default: one host.
- :class:`S3MediaStore`: an S3-compatible bucket (``MEDIA_STORE=s3``), which every host of a
  deployment reads and writes, so a turn stored by one inbound worker is readable by the responder
  or the API on any other.

A file is named by a key, ``<phone_number_id>/<customer key>/<sha256><extension>``, the same in
both stores: the key is what a turn records (``media.key``), never a host's path. Writes replace
the whole object (a redelivery rewrites the same bytes), and :meth:`MediaStore.sweep` deletes what
is older than the retention (``MEDIA_RETENTION_DAYS``).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from app.errors import ConversationError

if TYPE_CHECKING:
    from app.config import Settings

S3_DELETE_BATCH = 1000
"""Keys per ``DeleteObjects`` request: the most S3 accepts in one."""


class MediaStore(Protocol):
    """What the media step and its readers need from a store."""

    def put(self, key: str, content: bytes, mime_type: str | None) -> None:
        """Keep ``content`` under ``key``, replacing what was there, all or nothing."""

    def get(self, key: str) -> bytes:
        """The bytes under ``key``; :class:`MediaNotFound` if there are none."""

    def sweep(self, older_than: float) -> int:
        """Delete every file last written before ``older_than`` (epoch seconds); how many."""


class MediaNotFound(ConversationError):
    """No media is stored under the key asked for (never stored, or past its retention)."""


class MediaPathError(ConversationError):
    """A turn's ids do not make a folder inside ``MEDIA_DIR``: nothing is downloaded or written,
    and no retry can change that (the ids are never echoed: a customer id may be a phone)."""


class LocalMediaStore:
    """Files under one directory; a key that would resolve outside it is refused."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path_of(self, key: str) -> Path:
        """Where ``key`` lives, checked to resolve inside the directory (a symlink planted in
        it is not followed out); :class:`MediaPathError` otherwise."""
        root = self.root.resolve()
        path = (root / key).resolve()
        if not path.is_relative_to(root) or path.parent == root or path == root:
            raise MediaPathError("the customer's media folder is outside MEDIA_DIR")
        return path

    def put(self, key: str, content: bytes, mime_type: str | None) -> None:
        path = self.path_of(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside then renamed: a reader never sees half a file.
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self.path_of(key).read_bytes()
        except FileNotFoundError:
            raise MediaNotFound("no media under this key") from None

    def sweep(self, older_than: float) -> int:
        deleted = 0
        for path in self._files():
            try:
                if path.stat().st_mtime < older_than:
                    path.unlink()
                    deleted += 1
            except FileNotFoundError:  # another host's sweep, or a rename, got there first
                continue
        return deleted

    def _files(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return iter(())
        return (p for p in self.root.rglob("*") if p.is_file() and not p.is_symlink())


class S3MediaStore:
    """Objects in one bucket of S3 or of any S3-compatible server, through boto3."""

    def __init__(self, client: Any, bucket: str):
        self.client = client
        """A boto3 S3 client (``boto3.client("s3", ...)``)."""
        self.bucket = bucket

    @classmethod
    def from_settings(cls, settings: Settings) -> S3MediaStore:
        import boto3  # only deployments with MEDIA_STORE=s3 need it

        options: dict[str, Any] = {}
        if settings.media_s3_endpoint_url:
            options["endpoint_url"] = settings.media_s3_endpoint_url
        if settings.media_s3_region:
            options["region_name"] = settings.media_s3_region
        if settings.media_s3_access_key_id:
            options["aws_access_key_id"] = settings.media_s3_access_key_id
            options["aws_secret_access_key"] = settings.media_s3_secret_access_key
        return cls(boto3.client("s3", **options), settings.media_s3_bucket)

    def put(self, key: str, content: bytes, mime_type: str | None) -> None:
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=content,
            ContentType=mime_type or "application/octet-stream",
        )

    def get(self, key: str) -> bytes:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
        except self.client.exceptions.NoSuchKey:
            raise MediaNotFound("no media under this key") from None
        return answer["Body"].read()

    def sweep(self, older_than: float) -> int:
        expired: list[dict[str, str]] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for entry in page.get("Contents", []):
                if entry["LastModified"].timestamp() < older_than:
                    expired.append({"Key": entry["Key"]})
        for start in range(0, len(expired), S3_DELETE_BATCH):
            batch = expired[start : start + S3_DELETE_BATCH]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        return len(expired)


def media_store_for(settings: Settings) -> MediaStore:
    """The store ``MEDIA_STORE`` names."""
    if settings.media_store == "s3":
        return S3MediaStore.from_settings(settings)
    return LocalMediaStore(settings.media_dir)


def sweep_expired_media(store: MediaStore, retention_days: float, now: float | None = None) -> int:
    """Delete media older than the retention; 0 days keeps everything. How many were deleted."""
    if retention_days <= 0:
        return 0
    now = time.time() if now is None else now
    return store.sweep(now - retention_days * 86400)
