"""Media the simulator holds: uploads by the business and files its simulated customers send.

Files live in memory up to a byte budget (the oldest go first). Download URLs are signed and
expire, like Meta's, and the download itself needs the access token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import urlencode

MEDIA_CAPACITY_BYTES = 256 * 1024 * 1024
"""Bytes of media kept in memory; the oldest files are forgotten beyond it."""

MEDIA_URL_TTL = 300.0
"""Seconds a media download URL stays valid (Meta's are valid for five minutes)."""

DOWNLOAD_PATH = "/whatsapp_business/attachments/"
"""Where download URLs point, as Meta's lookaside URLs do."""


@dataclass(frozen=True)
class StoredMedia:
    """One media file and its facts as Meta reports them."""

    id: str
    content: bytes
    mime_type: str
    filename: str | None
    phone_number_id: str
    created_at: float

    @property
    def sha256(self) -> str:
        """Hex SHA-256, as ``GET /{media_id}`` gives it."""
        return hashlib.sha256(self.content).hexdigest()

    @property
    def sha256_base64(self) -> str:
        """Base64 SHA-256, as webhooks give it."""
        return base64.b64encode(hashlib.sha256(self.content).digest()).decode()


class MediaStore:
    """Media by id, bounded by total size, with signed, expiring download URLs."""

    def __init__(self, capacity_bytes: int = MEDIA_CAPACITY_BYTES, url_ttl: float = MEDIA_URL_TTL):
        self.capacity_bytes = capacity_bytes
        self.url_ttl = url_ttl
        self._key = os.urandom(32)
        self._media: OrderedDict[str, StoredMedia] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(
        self, content: bytes, mime_type: str, phone_number_id: str, filename: str | None = None
    ) -> StoredMedia:
        """Keep ``content`` under a fresh numeric id, as Meta's media ids are."""
        media = StoredMedia(
            id=str(10**15 + secrets.randbelow(9 * 10**15)),
            content=content,
            mime_type=mime_type,
            filename=filename,
            phone_number_id=phone_number_id,
            created_at=time.time(),
        )
        with self._lock:
            self._media[media.id] = media
            self._bytes += len(content)
            while self._bytes > self.capacity_bytes and len(self._media) > 1:
                _, old = self._media.popitem(last=False)
                self._bytes -= len(old.content)
        return media

    def get(self, media_id: str) -> StoredMedia | None:
        with self._lock:
            return self._media.get(media_id)

    def delete(self, media_id: str) -> bool:
        with self._lock:
            media = self._media.pop(media_id, None)
            if media is not None:
                self._bytes -= len(media.content)
            return media is not None

    def download_url(self, base_url: str, media_id: str) -> str:
        """A URL for ``media_id`` that expires in ``url_ttl`` seconds."""
        expires = str(int(time.time() + self.url_ttl))
        query = urlencode({"mid": media_id, "ext": expires, "hash": self._sign(media_id, expires)})
        return f"{base_url.rstrip('/')}{DOWNLOAD_PATH}?{query}"

    def resolve(
        self, media_id: str, expires: str, signature: str
    ) -> tuple[StoredMedia | None, str]:
        """The media a download URL names, or None with the reason."""
        if not hmac.compare_digest(self._sign(media_id, expires), signature):
            return None, "URL signature mismatch"
        try:
            if time.time() > int(expires):
                return None, "URL signature expired"
        except ValueError:
            return None, "URL signature mismatch"
        media = self.get(media_id)
        return (media, "") if media else (None, "media not found")

    def _sign(self, media_id: str, expires: str) -> str:
        return hmac.new(self._key, f"{media_id}:{expires}".encode(), hashlib.sha256).hexdigest()
