"""Which responder answers: the backend ``RESPONDER_BACKEND`` names, built from the settings."""

from __future__ import annotations

from app.config import Settings
from app.conversations.responders.agent_webhook import AgentWebhookResponder
from app.conversations.responders.interface import Responder
from app.conversations.responders.openai_compatible import OpenAIChatResponder
from app.conversations.responders.rules import RulesResponder


def build_responder(settings: Settings) -> Responder:
    """The backend ``RESPONDER_BACKEND`` names, configured from ``settings``."""
    if settings.responder_backend == "openai":
        return OpenAIChatResponder(
            base_url=settings.openai_base_url,
            model=settings.openai_model,
            api_key=settings.openai_api_key,
            timeout=settings.responder_timeout,
            system_prompt=settings.openai_system_prompt or None,
        )
    if settings.responder_backend == "http":
        return AgentWebhookResponder(
            url=settings.agent_webhook_url,
            token=settings.agent_webhook_token or None,
            timeout=settings.responder_timeout,
        )
    return RulesResponder.from_file(settings.rules_knowledge_file or None)
