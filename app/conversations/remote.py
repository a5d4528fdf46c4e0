"""Responders over HTTP: an OpenAI-compatible chat-completions API, and a generic agent webhook."""

from __future__ import annotations

import hashlib
from typing import Any

import requests

from app import __version__
from app.conversations.context import CUSTOMER
from app.conversations.responder import Inbound, ResponderError, ResponderTimeout

CONNECT_TIMEOUT = 3.05
"""Seconds to open a connection to the AI backend; the read timeout is the responder's."""

MAX_REPLY_CHARS = 4096
"""WhatsApp's limit for a text message body; longer replies are cut."""

DEFAULT_SYSTEM_PROMPT = (
    "You are the customer-service assistant of a business on WhatsApp. Answer in the customer's "
    "language ({language}), in plain text without markdown, {length}. If you cannot help, say "
    "that a person from the team will follow up."
)
"""The system message; ``{language}`` and ``{length}`` are filled per customer."""

LANGUAGE_NAMES = {"es": "Spanish", "en": "English"}


def _session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = f"wa-gateway/{__version__}"
    return session


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
        self.session = session or _session()
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
        answer = _post(
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


class AgentWebhookResponder:
    """A hosted agent behind a webhook (Bird's AI agents, a bot framework, your own service).

    The gateway POSTs the conversation as JSON (see :meth:`payload`) and reads
    ``{"reply": "text"}`` back; ``{"reply": null}`` means no reply.
    """

    cacheable = True
    personal = True  # the agent is told who the customer is

    def __init__(
        self,
        *,
        url: str,
        timeout: float,
        token: str | None = None,
        session: requests.Session | None = None,
    ):
        self.url = url
        self._token = token
        self.timeout = timeout
        self.session = session or _session()
        self.name = "http:" + hashlib.sha256(url.encode()).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"AgentWebhookResponder({self.url})"

    @staticmethod
    def payload(inbound: Inbound) -> dict[str, Any]:
        """The JSON the agent receives."""
        return {
            "conversation": {
                "phone_number_id": inbound.phone_number_id,
                "wa_id": inbound.wa_id,
                "name": inbound.name,
                "language": inbound.language,
            },
            "message": {
                "id": inbound.message_id,
                "type": inbound.type,
                "text": inbound.text,
                "structured": inbound.structured,
            },
            "context": inbound.context.to_dict(),
            "profile": inbound.profile.to_dict() if inbound.profile else None,
        }

    def reply(self, inbound: Inbound) -> str | None:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        answer = _post(self.session, self.url, self.payload(inbound), headers, self.timeout)
        reply = answer.get("reply")
        if reply is not None and not isinstance(reply, str):
            raise ResponderError("agent answer's reply is not text")
        return reply[:MAX_REPLY_CHARS] if reply else None


def _post(
    session: requests.Session,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    timeout: float,
) -> dict[str, Any]:
    # Errors are raised 'from None' and name no header: the key must never reach a log.
    try:
        response = session.post(url, json=body, headers=headers, timeout=(CONNECT_TIMEOUT, timeout))
    except requests.Timeout:
        raise ResponderTimeout(f"no answer within {timeout}s") from None
    except requests.RequestException as exc:
        raise ResponderError(f"could not reach the backend ({type(exc).__name__})") from None
    if response.status_code >= 400:
        raise ResponderError(f"backend answered HTTP {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        raise ResponderError("backend answer is not JSON") from None
    if not isinstance(answer, dict):
        raise ResponderError("backend answer is not a JSON object")
    return answer
