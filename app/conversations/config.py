"""How conversations are answered: the responder backend, its limits, context size, media.

Read from the environment (and ``.env``) once per process, like :mod:`app.config`; a malformed
variable stops start-up with a :class:`~app.config.ConfigError` naming it, never its value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from urllib.parse import urlsplit

from dotenv import dotenv_values

from app.config import mask_secret
from app.errors import ConfigError

BACKENDS = ("rules", "openai", "http")
"""Responder backends: the offline bilingual rules, an OpenAI-compatible API, an agent webhook."""

DEFAULT_BACKEND = "rules"
"""Works offline with no credentials, so a fresh gateway answers from the first message."""

DEFAULT_TIMEOUT = 10.0
"""Seconds a responder may take before the customer gets the fallback reply instead."""

MAX_TIMEOUT = 45.0
"""The longest responder timeout accepted: it must end well inside the task's time limit."""

DEFAULT_CONTEXT_MESSAGES = 10
"""Messages of context handed to the responder, besides the summary of the rest."""

DEFAULT_MEDIA_MAX_BYTES = 16 * 1024 * 1024
"""Largest media file downloaded (16 MiB: Meta's limit for audio and video)."""

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"

SECRET_FIELDS = frozenset({"openai_api_key", "agent_webhook_token"})
"""Settings never printed, logged or put into an error."""

_ENV_NAMES = {
    "backend": "RESPONDER_BACKEND",
    "timeout": "RESPONDER_TIMEOUT",
    "fallback_reply": "RESPONDER_FALLBACK_REPLY",
    "context_messages": "CONTEXT_MAX_MESSAGES",
    "cache_ttl": "AI_CACHE_TTL",
    "openai_base_url": "OPENAI_BASE_URL",
    "openai_model": "OPENAI_MODEL",
    "openai_api_key": "OPENAI_API_KEY",
    "openai_system_prompt": "OPENAI_SYSTEM_PROMPT",
    "agent_webhook_url": "AGENT_WEBHOOK_URL",
    "agent_webhook_token": "AGENT_WEBHOOK_TOKEN",
    "rules_knowledge_file": "RULES_KNOWLEDGE_FILE",
    "media_dir": "MEDIA_DIR",
    "media_max_bytes": "MEDIA_MAX_BYTES",
}


@dataclass(frozen=True)
class ConversationSettings:
    """The validated conversation configuration."""

    backend: str = DEFAULT_BACKEND
    timeout: float = DEFAULT_TIMEOUT
    fallback_reply: str = ""
    """Empty: a built-in apology in the customer's language."""
    context_messages: int = DEFAULT_CONTEXT_MESSAGES
    cache_ttl: int = 30 * 60
    """Seconds an AI reply is reused; 0 turns the cache off."""
    openai_base_url: str = DEFAULT_OPENAI_BASE_URL
    openai_model: str = DEFAULT_OPENAI_MODEL
    openai_api_key: str = ""
    openai_system_prompt: str = ""
    agent_webhook_url: str = ""
    agent_webhook_token: str = ""
    rules_knowledge_file: str = ""
    """A JSON file describing the business for the rules responder; empty: the sample shop."""
    media_dir: str = ".wa-gateway/media"
    media_max_bytes: int = DEFAULT_MEDIA_MAX_BYTES

    def masked(self) -> dict[str, str]:
        """The settings by environment name, secrets masked, for display."""
        shown = {}
        for f in fields(self):
            value = getattr(self, f.name)
            shown[_ENV_NAMES[f.name]] = (
                mask_secret(value) if f.name in SECRET_FIELDS else str(value)
            )
        return shown

    def __repr__(self) -> str:
        return f"ConversationSettings({self.masked()!r})"


def load_conversation_settings(
    environ: Mapping[str, str] | None = None, env_file: str | None = ".env"
) -> ConversationSettings:
    """Build :class:`ConversationSettings` from ``environ`` over an optional ``.env``."""
    source: dict[str, str] = {}
    if env_file and os.path.exists(env_file):
        source.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    source.update(os.environ if environ is None else environ)
    raw = {
        name: source[env].strip() for name, env in _ENV_NAMES.items() if source.get(env, "").strip()
    }
    problems: list[str] = []
    values: dict[str, object] = dict(raw)

    def number(name: str, kind: type, low: float, high: float) -> None:
        if name not in raw:
            return
        try:
            value = kind(raw[name])
        except ValueError:
            problems.append(f"{_ENV_NAMES[name]} must be a number")
            return
        if not low <= value <= high:
            problems.append(f"{_ENV_NAMES[name]} must be between {low} and {high}")
        values[name] = value

    number("timeout", float, 0.1, MAX_TIMEOUT)
    number("context_messages", int, 1, 50)
    number("cache_ttl", int, 0, 7 * 24 * 3600)
    number("media_max_bytes", int, 1024, 100 * 1024 * 1024)
    backend = raw.get("backend", DEFAULT_BACKEND).lower()
    values["backend"] = backend
    if backend not in BACKENDS:
        problems.append(f"RESPONDER_BACKEND must be one of {', '.join(BACKENDS)}")
    for name in ("openai_base_url", "agent_webhook_url"):
        url = raw.get(name)
        if url and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc):
            problems.append(f"{_ENV_NAMES[name]} must be an http(s) URL")
    if backend == "openai" and not raw.get("openai_api_key"):
        problems.append("OPENAI_API_KEY is missing (RESPONDER_BACKEND=openai)")
    if backend == "http" and not raw.get("agent_webhook_url"):
        problems.append("AGENT_WEBHOOK_URL is missing (RESPONDER_BACKEND=http)")
    knowledge = raw.get("rules_knowledge_file")
    if knowledge and not os.path.isfile(knowledge):
        problems.append("RULES_KNOWLEDGE_FILE does not name a readable file")
    if problems:
        raise ConfigError(problems)
    if "openai_base_url" in values:
        values["openai_base_url"] = str(values["openai_base_url"]).rstrip("/")
    return ConversationSettings(**values)  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def get_conversation_settings() -> ConversationSettings:
    """The process's conversation settings, read once."""
    return load_conversation_settings()
