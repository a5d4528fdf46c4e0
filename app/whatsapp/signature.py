"""Meta's webhook signatures: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

SIGNATURE_HEADER = "X-Hub-Signature-256"
"""The header in which Meta sends the body's signature."""

SIGNATURE_PREFIX = "sha256="


def sign(body: bytes, secret: str) -> str:
    """The ``X-Hub-Signature-256`` value Meta would send for ``body`` signed with ``secret``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def verify_signature(body: bytes, header: str | None, secrets: Iterable[str]) -> bool:
    """Whether ``header`` is a valid signature of ``body`` under any of ``secrets``.

    Comparison is constant-time; every secret is tried, so timing does not reveal which matched.
    A missing or malformed header is simply not valid.
    """
    if not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    received = header[len(SIGNATURE_PREFIX) :].strip().lower().encode()
    if len(received) != 64:
        return False
    valid = False
    for secret in secrets:
        expected = sign(body, secret)[len(SIGNATURE_PREFIX) :].encode()
        valid |= hmac.compare_digest(expected, received)
    return valid
