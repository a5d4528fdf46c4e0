"""Settings read once from the environment (and a ``.env`` file when present).

Every process - web, workers, beat, the CLI - takes its configuration from the environment alone.
A missing or malformed variable stops start-up with a :class:`ConfigError` that names the variable
and never shows a secret's value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from urllib.parse import urlsplit

from dotenv import dotenv_values

from app.errors import ConfigError

DEFAULT_API_BASE_URL = "https://graph.facebook.com"
"""Meta's Graph API host."""

DEFAULT_API_VERSION = "v23.0"
"""The Graph API version whose contract the client and simulator follow."""

SECRET_FIELDS = frozenset(
    {"access_token", "webhook_verify_token", "webhook_secret", "webhook_previous_secret"}
)
"""Settings whose values are never printed, logged or put into an error."""

_ENV_NAMES = {
    "access_token": "WHATSAPP_ACCESS_TOKEN",
    "phone_number_id": "WHATSAPP_PHONE_NUMBER_ID",
    "business_account_id": "WHATSAPP_BUSINESS_ACCOUNT_ID",
    "webhook_verify_token": "WHATSAPP_WEBHOOK_VERIFY_TOKEN",
    "webhook_secret": "WHATSAPP_WEBHOOK_SECRET",
    "webhook_previous_secret": "WHATSAPP_WEBHOOK_PREVIOUS_SECRET",
    "api_base_url": "WHATSAPP_API_BASE_URL",
    "api_version": "WHATSAPP_API_VERSION",
    "redis_url": "REDIS_URL",
    "webhook_max_age": "WEBHOOK_MAX_AGE_SECONDS",
}
_REQUIRED = (
    "access_token",
    "phone_number_id",
    "business_account_id",
    "webhook_verify_token",
    "webhook_secret",
    "redis_url",
)
_DEFAULTS = {
    "api_base_url": DEFAULT_API_BASE_URL,
    "api_version": DEFAULT_API_VERSION,
    "webhook_previous_secret": "",
    "webhook_max_age": "0",
}
_NUMERIC_ID = re.compile(r"^[0-9]{5,20}$")
_VERSION = re.compile(r"^v[0-9]+\.[0-9]+$")
_TOKEN = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces: what Meta issues


@dataclass(frozen=True)
class Settings:
    """The gateway's validated configuration."""

    access_token: str
    phone_number_id: str
    business_account_id: str
    webhook_verify_token: str
    webhook_secret: str
    redis_url: str
    api_base_url: str = DEFAULT_API_BASE_URL
    api_version: str = DEFAULT_API_VERSION
    webhook_previous_secret: str = ""
    webhook_max_age: int = 0
    """Seconds a webhook's ``X-Webhook-Timestamp`` may lag; 0 (the default) disables the check,
    since Meta sends no timestamp: it is for a trusted proxy that stamps each request."""

    @property
    def messages_url(self) -> str:
        """The Graph endpoint that sends messages from the configured number."""
        return f"{self.api_base_url}/{self.api_version}/{self.phone_number_id}/messages"

    @property
    def webhook_secrets(self) -> tuple[str, ...]:
        """App secrets whose signatures are accepted: the current one, then the previous one."""
        return tuple(s for s in (self.webhook_secret, self.webhook_previous_secret) if s)

    def masked(self) -> dict[str, str]:
        """The settings by environment name, with secrets masked, for display."""
        shown = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS:
                value = mask_secret(value)
            elif f.name == "redis_url":
                value = mask_url_password(value)
            shown[_ENV_NAMES[f.name]] = str(value)
        return shown

    def __repr__(self) -> str:  # dataclass repr would print the secrets
        return f"Settings({self.masked()!r})"


def mask_secret(value: str) -> str:
    """Show that a secret is set, and its length, but none of its characters."""
    return f"<set, {len(value)} chars>" if value else "<not set>"


def mask_url_password(url: str) -> str:
    """Replace the password of a URL such as ``redis://:pw@host/0`` with ``***``."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _validate(values: dict[str, str]) -> list[str]:
    problems = []
    for name in _REQUIRED:
        if not values.get(name):
            problems.append(f"{_ENV_NAMES[name]} is missing")
    for name in ("phone_number_id", "business_account_id"):
        value = values.get(name)
        if value and not _NUMERIC_ID.match(value):
            problems.append(f"{_ENV_NAMES[name]} must be Meta's numeric id (5 to 20 digits)")
    for name in (
        "access_token",
        "webhook_verify_token",
        "webhook_secret",
        "webhook_previous_secret",
    ):
        value = values.get(name)
        if value and not _TOKEN.match(value):
            problems.append(f"{_ENV_NAMES[name]} must be printable ASCII without spaces")
        elif value and len(value) < 8:
            problems.append(f"{_ENV_NAMES[name]} is too short to be a real credential")
    base = values.get("api_base_url", "")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        problems.append(
            "WHATSAPP_API_BASE_URL must be an http(s) origin such as " + DEFAULT_API_BASE_URL
        )
    if not _VERSION.match(values.get("api_version", "")):
        problems.append("WHATSAPP_API_VERSION must look like v23.0")
    if not re.match(r"^[0-9]{1,6}$", values.get("webhook_max_age", "")):
        problems.append("WEBHOOK_MAX_AGE_SECONDS must be a whole number of seconds (0 disables it)")
    redis_url = values.get("redis_url")
    if redis_url and urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
        problems.append("REDIS_URL must be a redis://, rediss:// or unix:// URL")
    return problems


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | None = ".env"
) -> Settings:
    """Build :class:`Settings` from ``environ`` (default ``os.environ``) over an optional ``.env``.

    Raises :class:`ConfigError` naming every missing or malformed variable.
    """
    source: dict[str, str] = {}
    if env_file and os.path.exists(env_file):
        source.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    source.update(os.environ if environ is None else environ)
    values = dict(_DEFAULTS)
    for name, env_name in _ENV_NAMES.items():
        raw = source.get(env_name)
        if raw is not None and raw.strip():
            values[name] = raw.strip()
    problems = _validate(values)
    if problems:
        raise ConfigError(problems)
    values["api_base_url"] = values["api_base_url"].rstrip("/")
    return Settings(**{**values, "webhook_max_age": int(values["webhook_max_age"])})


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return load_settings()
