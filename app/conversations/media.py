"""Customer media (image, audio, video, document, sticker): downloaded, verified, stored.

:class:`MediaFetcher` is the step of the inbound flow that turns a media id into a file in the
media store (:mod:`app.conversations.mediastore`: ``MEDIA_DIR``, or a bucket every host reads). It
works with any client offering ``download_media(media_id, *, max_bytes, expected_sha256=None)``
that returns an object with ``content``, ``mime_type`` and ``sha256``, chosen per turn by the
business number the customer wrote to (each number has its own token). A download that fails is
recorded on the turn (``media.error``) and the message is still answered: media is never a reason
to lose a message.

The file's key is ``<phone_number_id>/<customer key>/<sha256><extension>``, built only from ids of
Meta's documented shape (:mod:`app.whatsapp.ids`); a turn whose ids do not pass is recorded with
:class:`MediaPathError`. The turn records the key (``media.key``), which names the same file on
every host.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import mimetypes
from collections.abc import Callable
from typing import Any, Protocol

from app.conversations.mediastore import MediaPathError, MediaStore
from app.conversations.turns import CustomerTurn
from app.errors import ConversationError
from app.whatsapp.ids import is_customer_id, is_phone_number_id

log = logging.getLogger(__name__)


class MediaDownloader(Protocol):
    """What the fetcher needs from the Graph client."""

    def download_media(
        self, media_id: str, *, max_bytes: int, expected_sha256: str | None = None
    ) -> Any: ...


class MediaFetcher:
    """Download a turn's media, check its SHA-256 and size, store it by content hash."""

    def __init__(
        self,
        client_for: Callable[[str], MediaDownloader],
        store: MediaStore,
        max_bytes: int,
    ):
        self.client_for = client_for
        """The downloader of a business number (the turn's ``phone_number_id``)."""
        self.store = store
        self.max_bytes = max_bytes

    def __call__(self, turn: CustomerTurn) -> CustomerTurn:
        media = turn.structured.get("media")
        if not media or not media.get("id"):
            return turn
        try:
            # The folder first: ids that are not ids cost no download and write nowhere.
            folder = self.folder_for(turn)
            client = self.client_for(turn.phone_number_id)
            download = client.download_media(
                str(media["id"]), max_bytes=self.max_bytes, expected_sha256=media.get("sha256")
            )
            content = bytes(download.content)
            if len(content) > self.max_bytes:
                raise MediaRejected(f"{len(content)} bytes exceeds MEDIA_MAX_BYTES")
            digest = hashlib.sha256(content).digest()
            expected = decode_sha256(media.get("sha256"))
            if expected is not None and expected != digest:
                raise MediaRejected("content does not match the webhook's sha256")
            mime_type = download.mime_type or media.get("mime_type")
            extension = mimetypes.guess_extension((mime_type or "").split(";")[0].strip())
            # Named by its hash: a redelivery rewrites the same file.
            key = f"{folder}/{digest.hex()}{extension or '.bin'}"
            self.store.put(key, content, mime_type)
        except Exception as exc:  # noqa: BLE001 - recorded on the turn; the message goes on
            log.warning("media of %s not stored: %s", turn.id, type(exc).__name__)
            return turn.with_media(stored=False, error=f"{type(exc).__name__}: {exc}"[:200])
        return turn.with_media(stored=True, key=key, size=len(content))

    def folder_for(self, turn: CustomerTurn) -> str:
        """The folder of the turn's customer in the store, ``<phone_number_id>/<customer key>``,
        both validated ids; :class:`MediaPathError` otherwise."""
        if not is_phone_number_id(turn.phone_number_id):
            raise MediaPathError("the business number is not a phone number id")
        if not is_customer_id(turn.customer):
            raise MediaPathError("the customer is not named by a phone number or user id")
        return f"{turn.phone_number_id}/{turn.customer}"


class MediaRejected(ConversationError):
    """Downloaded media failed a check (size or hash)."""


def decode_sha256(value: Any) -> bytes | None:
    """A SHA-256 digest from Meta's base64 form (or hex); None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    if len(value) == 64:
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return digest if len(digest) == 32 else None
