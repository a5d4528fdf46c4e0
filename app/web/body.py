"""Request bodies bounded before they are read: Meta's largest webhook is 3 MiB, and a chunked
body is held to the same limit as one that declares its length."""

from __future__ import annotations

from typing import Any

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream

MAX_WEBHOOK_BYTES = 3 * 1024 * 1024
"""Meta's largest webhook payload is 3 MiB; anything larger is refused with 413 before it is read."""


class BoundedBody(LimitedStream):
    """A chunked body read up to ``max_bytes``: one byte more is 413, where Werkzeug's stream
    stops at the limit and hands the view a body cut short (a webhook then fails its signature)."""

    def __init__(self, stream: Any, max_bytes: int):
        super().__init__(stream, max_bytes + 1, is_max=True)

    def readinto(self, b: Any) -> int | None:  # type: ignore[override]
        size = super().readinto(b)
        if self.tell() >= self.limit:
            raise RequestEntityTooLarge()
        return size


class GatewayRequest(Request):
    """Flask's request, with a body past ``max_content_length`` refused (413) whether or not it
    declares its length."""

    @cached_property
    def stream(self) -> Any:
        """The body as Werkzeug gives it; a chunked one is bounded by :class:`BoundedBody`."""
        limit = self.max_content_length
        # Only a server that ends chunked bodies itself sets wsgi.input_terminated; without it
        # Werkzeug's own (empty) stream is the safe one.
        chunked = self.content_length is None and self.environ.get("wsgi.input_terminated")
        if limit is None or not chunked:
            return super().stream
        return BoundedBody(self.environ["wsgi.input"], limit)
