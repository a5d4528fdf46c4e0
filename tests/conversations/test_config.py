"""The conversation settings: each bad value named, never echoed; the defaults."""

import pytest

from app.config import ConfigError
from tests.stack import settings_of


@pytest.mark.parametrize(
    "environ, problem",
    [
        ({"RESPONDER_BACKEND": "gpt"}, "RESPONDER_BACKEND: input should be 'rules', 'openai'"),
        ({"RESPONDER_BACKEND": "openai"}, "OPENAI_API_KEY is missing"),
        ({"RESPONDER_BACKEND": "http"}, "AGENT_WEBHOOK_URL is missing"),
        ({"RESPONDER_TIMEOUT": "soon"}, "RESPONDER_TIMEOUT: input should be a valid number"),
        ({"RESPONDER_TIMEOUT": "300"}, "RESPONDER_TIMEOUT: input should be less than"),
        ({"CONTEXT_MAX_MESSAGES": "0"}, "CONTEXT_MAX_MESSAGES: input should be greater than"),
        ({"OPENAI_BASE_URL": "ftp://x"}, "OPENAI_BASE_URL must be an http(s) URL"),
        ({"RULES_KNOWLEDGE_FILE": "/nonexistent.json"}, "RULES_KNOWLEDGE_FILE"),
    ],
)
def test_each_bad_setting_is_named(environ, problem):
    with pytest.raises(ConfigError) as error:
        settings_of(environ)
    assert problem in str(error.value)


def test_secrets_never_appear_in_errors():
    with pytest.raises(ConfigError) as error:
        settings_of({"OPENAI_API_KEY": "sk-secret-value", "RESPONDER_TIMEOUT": "x"})
    assert "sk-secret-value" not in str(error.value)


def test_defaults():
    settings = settings_of({})
    assert (settings.responder_backend, settings.context_messages, settings.ai_cache_ttl) == (
        "rules",
        10,
        1800,
    )
