"""The agent-webhook responder: a hosted agent told the conversation as JSON, answering a reply."""

from __future__ import annotations

import hashlib
from typing import Any

import requests

from app.conversations.responders.interface import Inbound, ResponderError
from app.conversations.responders.remote import MAX_REPLY_CHARS, backend_session, post_json


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
        self.session = session or backend_session()
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
                "user_id": inbound.user_id,
                "customer": inbound.customer or inbound.wa_id,
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
        answer = post_json(self.session, self.url, self.payload(inbound), headers, self.timeout)
        reply = answer.get("reply")
        if reply is not None and not isinstance(reply, str):
            raise ResponderError("agent answer's reply is not text")
        return reply[:MAX_REPLY_CHARS] if reply else None
