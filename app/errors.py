"""The root of every error the gateway raises on purpose, and one family per subsystem under it.

::

    GatewayError
    ├── ConfigError          the process must not start as configured (settings, alerts, Flower)
    ├── WhatsAppError        the Cloud API (app.whatsapp): a message or media file refused before
    │                        any request, a Graph API failure grouped by the decision it drives,
    │                        a payload that is not a webhook
    ├── DeliveryError        the send path (app.delivery): a refused message, an idempotency clash
    ├── ConversationError    conversations (app.conversations): context, media, responders
    ├── EventError           events to the business's systems (app.events): a subscription
    │                        refused, a delivery that failed
    ├── CredentialError      sending numbers' keys and tokens (declared in app.credentials,
    │                        a family of one class)
    └── ApiError             an answer of the HTTP API (app.web), with its status and code

Families are declared here; their leaves live beside the code that raises them. Catch a family to
handle a subsystem's failures, ``GatewayError`` to tell the gateway's own errors from bugs. No
error carries a secret: messages name variables and fields, never their values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """The environment does not describe a runnable gateway; the message names each variable."""

    def __init__(self, problems: list[str] | str):
        # One problem may be given alone; its message is then the problem itself.
        single = isinstance(problems, str)
        self.problems = [problems] if single else list(problems)
        super().__init__(
            problems if single else "invalid configuration:\n  " + "\n  ".join(self.problems)
        )


class WhatsAppError(GatewayError):
    """The Cloud API refused, or would refuse, what the gateway sent or received."""


class DeliveryError(GatewayError):
    """The send path refused a message or a request before any send was queued."""


class ConversationError(GatewayError):
    """A conversation could not be read, updated or answered."""


class EventError(GatewayError):
    """An event subscription was refused, or an event could not be delivered to its subscriber."""


class StoreError(GatewayError):
    """Redis took a write but cannot yet vouch for it; the caller must not acknowledge it."""


class ReplicationTimeout(StoreError):
    """Fewer replicas than ``REDIS_MIN_REPLICAS`` confirmed a write within ``REDIS_WAIT_TIMEOUT``:
    a failover now could lose it, so the web answers 503 and the sender tries again."""


class ApiError(GatewayError):
    """An HTTP API answer other than success: ``status``, a ``code`` for programs, a ``message``
    for people, and optionally the ``field`` at fault, per-item ``errors`` and response headers.

    Views raise it; the web application turns it into ``{"error": {...}}`` in one place.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.errors = errors
        self.headers = dict(headers or {})
        super().__init__(f"{status} {code}: {message}")

    def to_dict(self) -> dict[str, Any]:
        """The body's ``error`` object: ``code`` and ``message``, plus ``field`` and ``errors``
        when they are set."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.errors is not None:
            body["errors"] = self.errors
        return body
