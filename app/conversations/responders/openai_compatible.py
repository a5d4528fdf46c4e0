"""The OpenAI-compatible responder: any chat-completions API, given the ranked context."""

from __future__ import annotations

import requests

from app.conversations.context import CUSTOMER
from app.conversations.responders.interface import Inbound, ResponderError
from app.conversations.responders.remote import MAX_REPLY_CHARS, backend_session, post_json

DEFAULT_SYSTEM_PROMPT = (
    "You are the customer-service assistant of a business on WhatsApp. Answer in the customer's "
    "language ({language}), in plain text without markdown, {length}. If you cannot help, say "
    "that a person from the team will follow up."
)
"""The system message; ``{language}`` and ``{length}`` are filled per customer."""

LANGUAGE_NAMES = {"es": "Spanish", "en": "English"}


class OpenAIChatResponder:
    """Any OpenAI-compatible ``POST {base_url}/chat/completions`` (OpenAI, Azure OpenAI's v1
    endpoint, vLLM, Ollama, LiteLLM ...), given the ranked context as chat messages."""

    cacheable = True
    personal = False  # the customer's number and name are never sent to the AI backend

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str,
        timeout: float,
        system_prompt: str | None = None,
        session: requests.Session | None = None,
    ):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self._api_key = api_key
        self.timeout = timeout
        self.system_prompt = system_prompt or DEFAULT_SYSTEM_PROMPT
        self.session = session or backend_session()
        self.name = f"openai:{model}"

    def __repr__(self) -> str:
        return f"OpenAIChatResponder({self.url}, model={self.model})"

    def messages(self, inbound: Inbound) -> list[dict[str, str]]:
        """The chat: system prompt, summary of the earlier conversation, ranked context, question."""
        preference = inbound.profile.preference if inbound.profile else None
        length = "in one or two sentences" if preference != "detailed" else "with helpful detail"
        system = self.system_prompt.replace(
            "{language}", LANGUAGE_NAMES.get(inbound.language or "", "the customer's language")
        ).replace("{length}", length)
        chat = [{"role": "system", "content": system}]
        if inbound.context.summary:
            chat.append(
                {
                    "role": "system",
                    "content": "Earlier in this conversation: " + inbound.context.summary,
                }
            )
        for exchange in inbound.context.messages:
            role = "user" if exchange.role == CUSTOMER else "assistant"
            chat.append({"role": role, "content": exchange.text})
        chat.append({"role": "user", "content": inbound.text})
        return chat

    def reply(self, inbound: Inbound) -> str | None:
        body = {"model": self.model, "messages": self.messages(inbound)}
        answer = post_json(
            self.session,
            self.url,
            body,
            {"Authorization": f"Bearer {self._api_key}"},
            self.timeout,
        )
        try:
            content = answer["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise ResponderError("chat completion without choices[0].message.content") from None
        if content is not None and not isinstance(content, str):
            raise ResponderError("chat completion content is not text")
        return content[:MAX_REPLY_CHARS] if content else None
