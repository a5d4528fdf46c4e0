"""Responders turn a customer's message into the business's reply."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Inbound:
    """What a responder is told about the message it answers."""

    wa_id: str
    text: str
    name: str | None = None


class Responder(Protocol):
    """Anything that can answer a customer: returns the reply text, or None for no reply."""

    def reply(self, inbound: Inbound) -> str | None: ...


def fold(text: str) -> str:
    """Lower-case ``text`` and strip accents, so "Qué" and "que" compare equal."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_GREETINGS_ES = {"hola", "buenas", "buenos", "saludos", "holi"}
_GREETINGS_EN = {"hi", "hello", "hey", "greetings"}
_WORD = re.compile(r"[a-z0-9]+")


class GreetingResponder:
    """The built-in offline responder: greets back in the customer's language, or asks how to help."""

    def reply(self, inbound: Inbound) -> str | None:
        words = set(_WORD.findall(fold(inbound.text)))
        name = f" {inbound.name}" if inbound.name else ""
        if words & _GREETINGS_ES:
            return f"¡Hola{name}! Soy el asistente virtual. ¿En qué puedo ayudarte?"
        if words & _GREETINGS_EN:
            return f"Hi{name}! I'm the virtual assistant. How can I help you?"
        return "Gracias por tu mensaje. / Thanks for your message. ¿En qué puedo ayudarte? How can I help?"
