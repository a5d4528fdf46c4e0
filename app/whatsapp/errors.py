"""One hierarchy for the Graph API's failures, grouped by the decision each one drives.

=====================  =========================================  ==========================
class                  what the caller does                       Graph error codes
=====================  =========================================  ==========================
``ThrottledError``     retry after ``retry_after`` or a backoff,  4, 80007, 130429, 131056,
                       without spending the failure budget        131057
``TransientError``     retry with exponential backoff             1, 2, 131000, 131016, any
                                                                  5xx, timeouts, connection
``PermanentError``     dead-letter at once, never retry           100, 131026, 131047, 131051,
                                                                  131052, 131053, 132xxx, ...
``ConfigurationError`` alert the operator, do not burn retries    0, 10, 190, 200-299, 131031,
                                                                  368, HTTP 401/403
=====================  =========================================  ==========================

An id of the wrong shape is refused before any request with :class:`InvalidIdentifierError`, a
``PermanentError``: a Graph URL is only ever built from ids that passed :mod:`app.whatsapp.ids`.

Unknown codes get a documented safe default: an HTTP 5xx (or no response at all) is transient,
an HTTP 429 is throttled, an HTTP 401/403 is a configuration problem, and any other 4xx is
permanent, because repeating a request Meta has refused cannot change its answer.

No error ever carries the access token: only Meta's error body, the HTTP status and the delay.

Media files refused by the client before an upload, or after a download, raise a
:class:`MediaError` instead (each with its own ``decision``): a missing file, one too large for
its type, an unsupported format (or bytes that are not what the name claims), a download whose
``sha256`` does not match.
"""

from __future__ import annotations

from typing import Any, ClassVar

from app.errors import WhatsAppError

RETRY_LATER = "retry_later"
RETRY_AFTER_DELAY = "retry_after_delay"
DEAD_LETTER = "dead_letter"
ALERT_OPERATOR = "alert_operator"


class MessageValidationError(WhatsAppError, ValueError):
    """A message Meta would refuse, caught before any request is made; ``field`` names the culprit."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class MediaError(WhatsAppError):
    """A media file the client refuses to upload, or a download it refuses to trust."""

    decision: ClassVar[str] = DEAD_LETTER


class MediaFileMissingError(MediaError, FileNotFoundError):
    """The file to upload does not exist or cannot be read."""


class MediaTooLargeError(MediaError):
    """The file is larger than Meta's limit for its type, or than the caller's download cap."""

    def __init__(self, message: str, *, size: int | None = None, limit: int | None = None):
        self.size = size
        self.limit = limit
        super().__init__(message)


class UnsupportedMediaTypeError(MediaError):
    """The MIME type is not one WhatsApp accepts for any media type (or for the one asked)."""


class MediaContentMismatchError(UnsupportedMediaTypeError):
    """The file's bytes are not what its name or declared type says (a renamed file)."""


class MediaIntegrityError(MediaError):
    """A download's SHA-256 differs from the one Meta announced: corrupt in transit, so retry."""

    decision = RETRY_LATER


class GraphAPIError(WhatsAppError):
    """Meta's Graph API refused a request or could not be reached.

    Attributes mirror Meta's error object: ``code``, ``subcode`` (``error_subcode``),
    ``error_type`` (``type``), ``details`` (``error_data.details``), ``fbtrace_id``; plus the
    ``http_status`` and the ``retry_after`` seconds the server asked for, if any.
    """

    decision: ClassVar[str] = DEAD_LETTER
    codes: ClassVar[frozenset[int]] = frozenset()

    def __init__(
        self,
        message: str = "",
        *,
        code: int | None = None,
        subcode: int | None = None,
        error_type: str | None = None,
        title: str | None = None,
        details: str | None = None,
        fbtrace_id: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
    ):
        self.message = message
        self.code = code
        self.subcode = subcode
        self.error_type = error_type
        self.title = title
        self.details = details
        self.fbtrace_id = fbtrace_id
        self.http_status = http_status
        self.retry_after = retry_after
        super().__init__(self.__str__())

    def __str__(self) -> str:
        code = f"({self.code}) " if self.code is not None else ""
        status = f" [HTTP {self.http_status}]" if self.http_status else ""
        return f"{code}{self.message or self.title or type(self).__name__}{status}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe description, for message records and the dead-letter store."""
        return {
            "class": type(self).__name__,
            "decision": self.decision,
            "code": self.code,
            "subcode": self.subcode,
            "type": self.error_type,
            "title": self.title,
            "message": self.message,
            "details": self.details,
            "fbtrace_id": self.fbtrace_id,
            "http_status": self.http_status,
            "retry_after": self.retry_after,
        }

    @classmethod
    def from_response(
        cls, http_status: int, body: Any, retry_after: float | None = None
    ) -> GraphAPIError:
        """The most specific error for a Graph response with ``http_status`` and JSON ``body``."""
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            error = {}
        code = _int_or_none(error.get("code"))
        error_data = error.get("error_data") if isinstance(error.get("error_data"), dict) else {}
        kind = classify(code, http_status)
        return kind(
            str(error.get("message") or f"HTTP {http_status} from the Graph API"),
            code=code,
            subcode=_int_or_none(error.get("error_subcode")),
            error_type=error.get("type"),
            title=error.get("error_user_title") or error.get("title"),
            details=error_data.get("details"),
            fbtrace_id=error.get("fbtrace_id"),
            http_status=http_status,
            retry_after=retry_after,
        )


class ThrottledError(GraphAPIError):
    """Meta is rate-limiting this number, pair or app: retry after the delay it gave."""

    decision = RETRY_AFTER_DELAY
    codes = frozenset({4, 80007, 130429, 131056, 131057})


class TransientError(GraphAPIError):
    """A passing failure (Meta's side, the network, a timeout): retry with backoff."""

    decision = RETRY_LATER
    codes = frozenset({1, 2, 131000, 131016})


class GraphTimeoutError(TransientError):
    """The Graph API did not answer within the client's timeout."""


class GraphConnectionError(TransientError):
    """The Graph API could not be reached."""


class PermanentError(GraphAPIError):
    """Meta refused this message for good: dead-letter it with the reason, never retry."""

    decision = DEAD_LETTER
    codes = frozenset({100, 131008, 131009, 131021, 131026, 131047, 131051, 131052, 131053})


class RecipientNotOnWhatsAppError(PermanentError):
    """The recipient's number is not a WhatsApp account (131026)."""

    codes = frozenset({131026})


class WindowClosedError(PermanentError):
    """More than 24 hours since the customer last wrote: only templates may be sent (131047)."""

    codes = frozenset({131047})


class TemplateError(PermanentError):
    """A template is missing, paused, or does not match its parameters (132xxx)."""


class InvalidIdentifierError(PermanentError):
    """An id that is not of the shape Meta documents (a media id, a phone number id, a wamid),
    refused before any request: no URL is built from it, and no retry can change it."""

    codes = frozenset()


class ConfigurationError(GraphAPIError):
    """The token, permissions or account are wrong: alert the operator, retries cannot help."""

    decision = ALERT_OPERATOR
    codes = frozenset({0, 10, 190, 131031, 368} | set(range(200, 300)))


_MOST_SPECIFIC_FIRST: tuple[type[GraphAPIError], ...] = (
    RecipientNotOnWhatsAppError,
    WindowClosedError,
    ThrottledError,
    TransientError,
    ConfigurationError,
    PermanentError,
)


def classify(code: int | None, http_status: int | None) -> type[GraphAPIError]:
    """The error class for a Graph error ``code`` and ``http_status`` (see the module table)."""
    if code is not None:
        for kind in _MOST_SPECIFIC_FIRST:
            if code in kind.codes:
                return kind
        if 132000 <= code < 133000:
            return TemplateError
    if http_status is None or http_status >= 500:
        return TransientError
    if http_status == 429:
        return ThrottledError
    if http_status in (401, 403):
        return ConfigurationError
    return PermanentError


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
