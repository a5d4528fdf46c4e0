"""Customer media (image, audio, video, document, sticker): downloaded, verified, stored.

:class:`MediaFetcher` is the step of the inbound flow that turns a media id into a file under
``MEDIA_DIR``. It works with any client offering ``download_media(media_id, *, max_bytes,
expected_sha256=None)`` that returns an object with ``content``, ``mime_type`` and ``sha256``,
chosen per turn by the business number the customer wrote to (each number has its own token). A
download that fails is recorded on the turn (``media.error``) and the message is still answered:
media is never a reason to lose a message.

The file goes to ``MEDIA_DIR/<phone_number_id>/<customer key>/<sha256><extension>``: a folder
built only from ids of Meta's documented shape (:mod:`app.whatsapp.ids`) and checked to resolve
inside ``MEDIA_DIR``; a turn whose ids do not pass is recorded with :class:`MediaPathError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import mimetypes
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

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
        media_dir: str | Path,
        max_bytes: int,
    ):
        self.client_for = client_for
        """The downloader of a business number (the turn's ``phone_number_id``)."""
        self.media_dir = Path(media_dir)
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
            path = self.store(folder, content, download.mime_type or media.get("mime_type"), digest)
        except Exception as exc:  # noqa: BLE001 - recorded on the turn; the message goes on
            log.warning("media of %s not stored: %s", turn.id, type(exc).__name__)
            return turn.with_media(stored=False, error=f"{type(exc).__name__}: {exc}"[:200])
        return turn.with_media(stored=True, path=str(path), size=len(content))

    def folder_for(self, turn: CustomerTurn) -> Path:
        """The folder of the turn's customer under the media directory: ``<phone_number_id>/
        <customer key>``, both validated ids, and checked to resolve inside the directory (a
        symlink planted there is not followed out). Raises :class:`MediaPathError` otherwise."""
        if not is_phone_number_id(turn.phone_number_id):
            raise MediaPathError("the business number is not a phone number id")
        if not is_customer_id(turn.customer):
            raise MediaPathError("the customer is not named by a phone number or user id")
        root = self.media_dir.resolve()
        folder = (root / turn.phone_number_id / turn.customer).resolve()
        if not folder.is_relative_to(root) or folder == root:
            raise MediaPathError("the customer's media folder is outside MEDIA_DIR")
        return folder

    def store(self, folder: Path, content: bytes, mime_type: str | None, digest: bytes) -> Path:
        """Write ``content`` in ``folder`` (from :meth:`folder_for`), named by its hash (a
        redelivery rewrites the same file), atomically (a reader never sees half a file)."""
        extension = mimetypes.guess_extension((mime_type or "").split(";")[0].strip()) or ".bin"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{digest.hex()}{extension}"
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return path


class MediaRejected(ConversationError):
    """Downloaded media failed a check (size or hash)."""


class MediaPathError(ConversationError):
    """A turn's ids do not make a folder inside ``MEDIA_DIR``: nothing is downloaded or written,
    and no retry can change that (the ids are never echoed: a customer id may be a phone)."""


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
