import pytest

from app.config import ConfigError
from app.conversations.config import load_conversation_settings


@pytest.mark.parametrize(
    "environ, problem",
    [
        ({"RESPONDER_BACKEND": "gpt"}, "RESPONDER_BACKEND must be one of"),
        ({"RESPONDER_BACKEND": "openai"}, "OPENAI_API_KEY is missing"),
        ({"RESPONDER_BACKEND": "http"}, "AGENT_WEBHOOK_URL is missing"),
        ({"RESPONDER_TIMEOUT": "soon"}, "RESPONDER_TIMEOUT must be a number"),
        ({"RESPONDER_TIMEOUT": "300"}, "RESPONDER_TIMEOUT must be between"),
        ({"CONTEXT_MAX_MESSAGES": "0"}, "CONTEXT_MAX_MESSAGES must be between"),
        ({"OPENAI_BASE_URL": "ftp://x"}, "OPENAI_BASE_URL must be an http(s) URL"),
        ({"RULES_KNOWLEDGE_FILE": "/nonexistent.json"}, "RULES_KNOWLEDGE_FILE"),
    ],
)
def test_each_bad_setting_is_named(environ, problem):
    with pytest.raises(ConfigError) as error:
        load_conversation_settings(environ, env_file=None)
    assert problem in str(error.value)


def test_secrets_never_appear_in_errors():
    with pytest.raises(ConfigError) as error:
        load_conversation_settings(
            {"OPENAI_API_KEY": "sk-secret-value", "RESPONDER_TIMEOUT": "x"}, env_file=None
        )
    assert "sk-secret-value" not in str(error.value)


def test_defaults():
    settings = load_conversation_settings({}, env_file=None)
    assert (settings.backend, settings.context_messages, settings.cache_ttl) == ("rules", 10, 1800)
