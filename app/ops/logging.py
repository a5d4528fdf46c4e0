"""Structured logs: one JSON object a line, with the ids that follow a message across processes.

Every line carries the correlation ids bound for the work in hand (``message_id``, ``wamid``,
``task_id``, ``root_id``: the id of the first task of a chain, shared by the inbound task and the
sends it queued). Whatever the level, phone numbers are masked to their last four digits and the
values of configured secrets (tokens, app secrets, passwords, API keys, webhook URLs) are
replaced, wherever they appear: a mistaken ``log.info(token)`` still leaks nothing. Message
bodies are only ever logged at debug level.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from app.config import get_settings, secret_values

CORRELATION_FIELDS = ("message_id", "wamid", "task_id", "task", "root_id")
"""Ids a log line carries when they are bound."""

REDACTED = "[redacted]"
_MIN_SECRET_LENGTH = 6  # shorter values would match ordinary words

# Not inside a word, a decimal or a dashed id (a UUID segment can be all digits).
_PHONE = re.compile(r"(?<![\w.\-])\+?(\d{4,11})(\d{4})(?![\w\-])")
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_SECRET_PARAM = re.compile(
    r"((?:access_token|hub\.verify_token|password|secret|api_key)[\"']?\s*[=:]\s*[\"']?)[^\s&\"',}]+",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]*:)[^@\s]+(@)")
# What an ASCII text must contain, lowercased, for each pattern above to match it; most log values
# (ids, queue names) contain none, and a substring test costs a fraction of a failed search.
_SECRET_KEYS = ("access_token", "hub.verify_token", "password", "secret", "api_key")

# Never mutated in place (bind sets a new dict), so the shared empty default is safe.
_context: ContextVar[Mapping[str, str]] = ContextVar("wa_log_context", default=MappingProxyType({}))
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


# --- Correlation ids ---------------------------------------------------------------------------


def bind(**ids: Any) -> Token:
    """Add correlation ids to every line logged from this context; returns a token for :func:`unbind`."""
    merged = {**_context.get(), **{k: str(v) for k, v in ids.items() if v is not None}}
    return _context.set(merged)


def unbind(token: Token) -> None:
    """Restore the ids as they were before the :func:`bind` that returned ``token``."""
    _context.reset(token)


def clear() -> None:
    """Forget every bound id (at the end of a task)."""
    _context.set(MappingProxyType({}))


def bound() -> dict[str, str]:
    """The ids bound now."""
    return dict(_context.get())


@contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    """Bind ``ids`` for the duration of the block."""
    token = bind(**ids)
    try:
        yield
    finally:
        unbind(token)


# --- Redaction ---------------------------------------------------------------------------------


class Redactor:
    """Masks phone numbers and removes secret values from text."""

    def __init__(self, secrets: set[str] | None = None):
        # Longest first, so a secret that contains another is replaced whole.
        self.secrets = sorted(
            (s for s in (secrets or set()) if len(s) >= _MIN_SECRET_LENGTH), key=len, reverse=True
        )

    @classmethod
    def for_process(cls) -> Redactor:
        """Every secret value this process knows (see :func:`app.config.secret_values`)."""
        return cls(secret_values())

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        # Case-insensitive matching folds some non-ASCII letters onto ASCII ones (the long s onto
        # "s"), so only an ASCII text may skip a pattern on its lowercase form.
        lowered = text.lower() if text.isascii() else None
        if lowered is None or "bearer" in lowered:
            text = _BEARER.sub(r"\1" + REDACTED, text)
        if lowered is None or any(key in lowered for key in _SECRET_KEYS):
            text = _SECRET_PARAM.sub(r"\1" + REDACTED, text)
        if "://" in text:
            text = _URL_PASSWORD.sub(r"\1" + REDACTED + r"\2", text)
        return mask_phone_numbers(text)


def mask_phone_numbers(text: str) -> str:
    """Replace all but the last four digits of every phone-number-like run of 8 to 15 digits."""
    return _PHONE.sub(lambda m: "*" * len(m.group(1)) + m.group(2), text)


# --- Formatters --------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, correlation ids and extras."""

    def __init__(self, *args: Any, redactor: Redactor | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.redact = redactor or Redactor.for_process()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": self.redact(record.getMessage()),
            "pid": record.process,
        }
        entry.update(_context.get())
        for name, value in vars(record).items():
            if name not in _STANDARD_ATTRS and not name.startswith("_"):
                entry[name] = self._clean(value)
        if record.exc_info:
            entry["exception"] = self.redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)

    def _clean(self, value: Any) -> Any:
        if isinstance(value, (int, float, bool)) or value is None:
            return value
        return self.redact(value if isinstance(value, str) else json.dumps(value, default=str))


class TextFormatter(logging.Formatter):
    """A human-readable line with the same redaction and ids as :class:`JsonFormatter`."""

    def __init__(self, *args: Any, redactor: Redactor | None = None, **kwargs: Any):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", *args, **kwargs)
        self.redact = redactor or Redactor.for_process()

    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(f"{k}={v}" for k, v in _context.get().items())
        line = super().format(record)
        return self.redact(f"{line} [{ids}]" if ids else line)


def formatter(fmt: str | None = None) -> logging.Formatter:
    """The formatter ``LOG_FORMAT`` (or ``fmt``) names: json, or text for a person."""
    return TextFormatter() if (fmt or get_settings().log_format) == "text" else JsonFormatter()


def configure_logging(level: str | int = "INFO", fmt: str | None = None) -> None:
    """Send every log record of this process to stderr through the gateway's formatter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
