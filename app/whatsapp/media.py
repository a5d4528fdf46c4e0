"""WhatsApp media: which files Meta accepts for each media type, checked before any upload.

A file is checked three ways: its MIME type must be on the allow-list of a media type, its size
within that type's limit, and its bytes must really be that format (a PDF renamed ``photo.jpg``
is caught). Each failure has its own error class in :mod:`app.whatsapp.errors`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path

import filetype

from app.whatsapp.errors import (
    MediaContentMismatchError,
    MediaFileMissingError,
    MediaTooLargeError,
    UnsupportedMediaTypeError,
)

MB = 1024 * 1024
KB = 1024

IMAGE_MAX_BYTES = 5 * MB
"""Largest image (JPEG, PNG) Meta accepts."""
VIDEO_MAX_BYTES = 16 * MB
"""Largest video (MP4, 3GPP)."""
AUDIO_MAX_BYTES = 16 * MB
"""Largest audio file (AAC, AMR, MP3, M4A, OGG)."""
DOCUMENT_MAX_BYTES = 100 * MB
"""Largest document."""
STICKER_MAX_BYTES = 100 * KB
"""Largest static WebP sticker."""
ANIMATED_STICKER_MAX_BYTES = 500 * KB
"""Largest animated WebP sticker."""

_ISO_MEDIA = frozenset({"video/mp4", "video/x-m4v", "video/3gpp", "video/quicktime", "audio/mp4"})
# Office formats: the legacy ones share one container (OLE), the new ones are zip files.
_OLE = frozenset(
    {"application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint"}
)
_OOXML = frozenset(
    {
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/zip",
    }
)
_TEXT = frozenset()  # plain text has no signature: it is checked for binary bytes instead

ALLOWED_MIME_TYPES: dict[str, tuple[str, frozenset[str]]] = {
    "image/jpeg": ("image", frozenset({"image/jpeg"})),
    "image/png": ("image", frozenset({"image/png", "image/apng"})),
    "video/mp4": ("video", _ISO_MEDIA),
    "video/3gpp": ("video", _ISO_MEDIA),
    "audio/aac": ("audio", frozenset({"audio/aac"})),
    "audio/amr": ("audio", frozenset({"audio/amr"})),
    "audio/mpeg": ("audio", frozenset({"audio/mpeg"})),
    "audio/mp4": ("audio", _ISO_MEDIA),
    "audio/ogg": ("audio", frozenset({"audio/ogg"})),
    "image/webp": ("sticker", frozenset({"image/webp"})),
    "text/plain": ("document", _TEXT),
    "application/pdf": ("document", frozenset({"application/pdf"})),
    "application/msword": ("document", _OLE),
    "application/vnd.ms-excel": ("document", _OLE),
    "application/vnd.ms-powerpoint": ("document", _OLE),
    **{mime: ("document", _OOXML) for mime in _OOXML - {"application/zip"}},
}
"""Each MIME type WhatsApp accepts: its media type, and the formats its bytes may be detected as."""

MAX_BYTES = {
    "image": IMAGE_MAX_BYTES,
    "video": VIDEO_MAX_BYTES,
    "audio": AUDIO_MAX_BYTES,
    "document": DOCUMENT_MAX_BYTES,
    "sticker": STICKER_MAX_BYTES,
}
"""The size limit of each media type (animated stickers: :data:`ANIMATED_STICKER_MAX_BYTES`)."""

_EXTENSIONS = {
    ".amr": "audio/amr",
    ".aac": "audio/aac",
    ".m4a": "audio/mp4",
    ".opus": "audio/ogg",
    ".ogg": "audio/ogg",
    ".3gp": "video/3gpp",
    ".webp": "image/webp",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
}
"""Extensions the standard library guesses wrongly or not at all."""


@dataclass(frozen=True)
class CheckedMedia:
    """A file that passed every check: what it is, and how big."""

    kind: str
    mime_type: str
    size: int
    animated: bool = False


@dataclass(frozen=True)
class MediaInfo:
    """What ``GET /{media_id}`` answers: a short-lived download ``url`` and the file's facts.

    ``sha256`` is as Meta gives it (hex); ``file_size`` in bytes.
    """

    id: str
    url: str
    mime_type: str
    sha256: str
    file_size: int


@dataclass(frozen=True)
class MediaDownload:
    """A downloaded media file; ``sha256`` (hex) has been verified when one was expected."""

    content: bytes
    mime_type: str
    sha256: str


def guess_mime_type(filename: str) -> str | None:
    """The MIME type a file name suggests, or None."""
    suffix = Path(filename).suffix.lower()
    return _EXTENSIONS.get(suffix) or mimetypes.guess_type(filename)[0]


def check_media(content: bytes, mime_type: str | None, kind: str | None = None) -> CheckedMedia:
    """Check ``content`` declared as ``mime_type`` (detected from the bytes when None).

    ``kind`` (``image``, ``sticker`` ...) narrows the allow-list to one media type. Raises
    :class:`UnsupportedMediaTypeError`, :class:`MediaContentMismatchError` or
    :class:`MediaTooLargeError`.
    """
    if not content:
        raise MediaContentMismatchError("the file is empty")
    detected = _detect(content)
    mime_type = (mime_type or detected or "").split(";")[0].strip().lower()
    if mime_type not in ALLOWED_MIME_TYPES:
        raise UnsupportedMediaTypeError(
            f"{mime_type or 'unknown format'} is not a WhatsApp media type"
        )
    media_kind, accepted = ALLOWED_MIME_TYPES[mime_type]
    if kind is not None and kind != media_kind:
        raise UnsupportedMediaTypeError(f"{mime_type} is not accepted for {kind}")
    if accepted:
        if detected not in accepted:
            raise MediaContentMismatchError(
                f"declared {mime_type} but the bytes are {detected or 'not a known format'}"
            )
    elif detected is not None or b"\x00" in content[:8192]:
        raise MediaContentMismatchError(f"declared {mime_type} but the file is binary")
    animated = media_kind == "sticker" and is_animated_webp(content)
    limit = ANIMATED_STICKER_MAX_BYTES if animated else MAX_BYTES[media_kind]
    if len(content) > limit:
        raise MediaTooLargeError(
            f"{len(content)} bytes is over the {limit}-byte limit for "
            f"{'animated ' if animated else ''}{media_kind}",
            size=len(content),
            limit=limit,
        )
    return CheckedMedia(media_kind, mime_type, len(content), animated)


def read_media_file(
    path: str | os.PathLike[str], mime_type: str | None = None, kind: str | None = None
) -> tuple[bytes, CheckedMedia]:
    """Read and check the file at ``path``; its type comes from ``mime_type`` or its name.

    The size is checked before the file is read, so a huge file is refused without loading it.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaFileMissingError(f"no file at {path.name}")
    size = path.stat().st_size
    mime_type = mime_type or guess_mime_type(path.name)
    if mime_type is not None:
        allowed = ALLOWED_MIME_TYPES.get(mime_type.lower())
        if allowed is not None and size > _largest_limit(allowed[0]):
            raise MediaTooLargeError(
                f"{size} bytes is over the limit for {allowed[0]}",
                size=size,
                limit=_largest_limit(allowed[0]),
            )
    try:
        content = path.read_bytes()
    except OSError:
        raise MediaFileMissingError(f"cannot read {path.name}") from None
    return content, check_media(content, mime_type, kind)


def is_animated_webp(content: bytes) -> bool:
    """Whether WebP ``content`` is animated (an extended header with the animation flag)."""
    return (
        content[:4] == b"RIFF"
        and content[8:12] == b"WEBP"
        and content[12:16] == b"VP8X"
        and len(content) > 20
        and bool(content[20] & 0x02)
    )


def sha256_matches(expected: str, digest: bytes) -> bool:
    """Whether ``expected`` (hex, as the media endpoint gives it, or base64, as webhooks give
    it) is the SHA-256 ``digest``."""
    expected = expected.strip()
    candidates = []
    if len(expected) == 64:
        try:
            candidates.append(bytes.fromhex(expected))
        except ValueError:
            pass
    try:
        padded = expected + "=" * (-len(expected) % 4)
        candidates.append(
            base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        )
    except (binascii.Error, ValueError):
        pass
    return any(hmac.compare_digest(candidate, digest) for candidate in candidates)


def _detect(content: bytes) -> str | None:
    kind = filetype.guess(content[:8192]) if content else None
    return kind.mime if kind else None


def _largest_limit(kind: str) -> int:
    return ANIMATED_STICKER_MAX_BYTES if kind == "sticker" else MAX_BYTES[kind]
