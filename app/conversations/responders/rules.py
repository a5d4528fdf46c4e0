"""The offline responder: bilingual (Spanish, English) intents answered from a small knowledge file.

It needs no network and no credentials, so it is the default. It recognises greetings, prices,
order status, shipping, opening hours, a request for a person, thanks, and answers anything else
with a helpful menu, always in the customer's language. It uses the conversation: a follow-up such
as "and how long does shipping take for that?" is answered about the product mentioned before.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from app.conversations.context import Exchange
from app.conversations.profile import DETAILED
from app.conversations.responders.interface import Inbound
from app.conversations.text import detect_language, fold, words

SAMPLE_KNOWLEDGE: dict[str, Any] = {
    "business": {"es": "la tienda de ejemplo", "en": "the sample shop"},
    "opening_hours": {
        "es": "Abrimos de lunes a viernes de 9:00 a 18:00 y los sábados de 10:00 a 14:00.",
        "en": "We are open Monday to Friday 9:00-18:00 and Saturday 10:00-14:00.",
    },
    "shipping": {
        "es": "El envío tarda de 2 a 4 días hábiles",
        "en": "Shipping takes 2 to 4 working days",
    },
    "order_tracking_url": "https://example.com/orders",
    "products": [
        {
            "id": "red-tshirt",
            "names": {"es": "la camiseta roja", "en": "the red T-shirt"},
            "keywords": ["camiseta roja", "red t-shirt", "red tshirt", "red shirt", "camiseta"],
            "price": "25 USD",
            "shipping": {"es": "1 a 2 días hábiles", "en": "1 to 2 working days"},
            "details": {
                "es": "Es de algodón orgánico, tallas S a XL.",
                "en": "It is organic cotton, sizes S to XL.",
            },
        },
        {
            "id": "sneakers",
            "names": {"es": "las zapatillas blancas", "en": "the white sneakers"},
            "keywords": ["zapatillas", "tenis", "sneakers", "trainers", "shoes", "zapatos"],
            "price": "60 USD",
            "shipping": {"es": "3 a 5 días hábiles", "en": "3 to 5 working days"},
            "details": {"es": "Tallas 36 a 45.", "en": "Sizes 36 to 45 (EU)."},
        },
    ],
}
"""A sample shop, so the gateway answers sensibly out of the box; replace it with
``RULES_KNOWLEDGE_FILE`` (the same shape, as JSON)."""

_HUMAN = re.compile(
    r"\b(?:persona|humano|humana|agente|asesor|asesora|operador|operadora|alguien real"
    r"|hablar con alguien|human|agent|real person|representative|operator|talk to someone)\b"
)
_ORDER = re.compile(r"\b(?:pedido|orden|order|rastreo|rastrear|tracking|track|seguimiento)\b")
_ORDER_NUMBER = re.compile(r"#\s?(\d{3,})|\b(\d{5,})\b")
_SHIPPING = re.compile(
    r"\b(?:envio|envios|enviar|envian|entrega|llega|llegan|tarda|tardan|demora|shipping|ship"
    r"|ships|delivery|deliver|arrive|arrives)\b"
)
_PRICE = re.compile(
    r"\b(?:precio|precios|cuesta|cuestan|cuanto vale|valor|costo|price|prices|cost|costs"
    r"|how much)\b"
)
_HOURS = re.compile(
    r"\b(?:horario|horarios|abren|abierto|abiertos|cierran|a que hora|open|opening|hours|close"
    r"|closing)\b"
)
_THANKS = re.compile(r"\b(?:gracias|muchas gracias|thanks|thank you|thx)\b")
_GREETINGS = frozenset(
    {"hola", "buenas", "buenos", "saludos", "holi", "hi", "hello", "hey", "greetings"}
)

HANDOFF_REPLIES = {
    "es": "Entendido, te comunico con una persona del equipo. Te responderá por aquí en breve.",
    "en": "Sure, I'm passing you to a person on our team. They will answer you here shortly.",
}
"""What the customer is told when they ask for a person and the conversation is handed over."""


def wants_human(text: str) -> bool:
    """Whether ``text`` asks to talk to a person, in Spanish or English."""
    return bool(_HUMAN.search(fold(text)))


class RulesResponder:
    """Bilingual intents over a knowledge dict (see :data:`SAMPLE_KNOWLEDGE`)."""

    name = "rules"
    cacheable = False  # instant and local: caching would only cost Redis round trips
    personal = True

    def __init__(self, knowledge: dict[str, Any] | None = None):
        self.knowledge = knowledge or SAMPLE_KNOWLEDGE
        self.products = list(self.knowledge.get("products", []))

    @classmethod
    def from_file(cls, path: str | None) -> RulesResponder:
        """The responder for the knowledge file at ``path``, or the sample shop."""
        return cls(json.loads(Path(path).read_text()) if path else None)

    def reply(self, inbound: Inbound) -> str | None:
        profile_language = inbound.profile.language if inbound.profile else None
        lang = detect_language(inbound.text, default=inbound.language or profile_language) or "es"
        folded = fold(inbound.text)
        name = f" {inbound.name}" if inbound.name else ""
        detailed = bool(inbound.profile and inbound.profile.preference == DETAILED)
        if _HUMAN.search(folded):
            return HANDOFF_REPLIES[lang]
        if _ORDER.search(folded) or (_ORDER_NUMBER.search(folded) and "#" in folded):
            return self._order_status(folded, inbound.context.messages, lang)
        if _SHIPPING.search(folded):
            return self._shipping(inbound, lang, detailed)
        if _PRICE.search(folded):
            return self._price(inbound, lang, detailed)
        if _HOURS.search(folded):
            return self._text("opening_hours", lang)
        if set(words(inbound.text)) & _GREETINGS:
            business = self._text("business", lang)
            if lang == "en":
                return f"Hi{name}! I'm the virtual assistant of {business}. How can I help you?"
            return f"¡Hola{name}! Soy el asistente virtual de {business}. ¿En qué puedo ayudarte?"
        if _THANKS.search(folded):
            return "¡Con gusto! ¿Algo más?" if lang == "es" else "You're welcome! Anything else?"
        return self._fallback(inbound, lang)

    def _order_status(self, folded: str, context: list[Exchange], lang: str) -> str:
        number = _order_number(folded)
        for exchange in reversed(context):  # "¿y mi pedido?" after giving the number earlier
            if number:
                break
            number = _order_number(fold(exchange.text)) if exchange.role == "customer" else None
        url = self.knowledge.get("order_tracking_url")
        if not number:
            if lang == "en":
                return "Happy to check your order. What is the order number (for example #12345)?"
            return "Con gusto reviso tu pedido. ¿Me compartes el número (por ejemplo #12345)?"
        if lang == "en":
            tail = f" You can follow it at {url}." if url else ""
            return f"I have noted order #{number}; a teammate will confirm its status here.{tail}"
        tail = f" Puedes seguirlo en {url}." if url else ""
        return (
            f"Anoté el pedido #{number}; alguien del equipo te confirma su estado por aquí.{tail}"
        )

    def _shipping(self, inbound: Inbound, lang: str, detailed: bool) -> str:
        product = self._product_in(inbound)
        general = self._text("shipping", lang)
        if product and product.get("shipping"):
            days = product["shipping"][lang]
            label = product["names"][lang]
            if lang == "en":
                return f"Shipping for {label} takes {days}." + (f" {general}." if detailed else "")
            label = label[0].upper() + label[1:]
            return f"{label} llega en {days}." + (f" {general}." if detailed else "")
        return general + "."

    def _price(self, inbound: Inbound, lang: str, detailed: bool) -> str:
        product = self._product_in(inbound)
        if product:
            label = product["names"][lang]
            details = f" {product['details'][lang]}" if detailed and product.get("details") else ""
            if lang == "en":
                return f"{label[0].upper() + label[1:]} costs {product['price']}.{details}"
            return f"{label[0].upper() + label[1:]} cuesta {product['price']}.{details}"
        names = ", ".join(p["names"][lang] for p in self.products)
        if lang == "en":
            return f"Which product would you like a price for? We have {names}."
        return f"¿De qué producto quieres saber el precio? Tenemos {names}."

    def _fallback(self, inbound: Inbound, lang: str) -> str:
        kind = inbound.type
        if lang == "en":
            thanks = {
                "location": "Thanks for your location. ",
                "contacts": "Thanks for the contact. ",
            }
            opener = thanks.get(
                kind, f"Thanks for the {kind}. " if "media" in inbound.structured else ""
            )
            return (
                f"{opener}I can help with prices, order status, shipping and opening hours; "
                "write 'agent' to talk to a person."
            )
        thanks = {"location": "Gracias por tu ubicación. ", "contacts": "Gracias por el contacto. "}
        opener = thanks.get(
            kind, "Gracias por el archivo. " if "media" in inbound.structured else ""
        )
        return (
            f"{opener}Puedo ayudarte con precios, el estado de tu pedido, envíos y horarios; "
            "escribe «agente» para hablar con una persona."
        )

    def _product_in(self, inbound: Inbound) -> dict[str, Any] | None:
        """The product the message names or, failing that, the latest one the context names."""
        texts = [inbound.text] + [e.text for e in reversed(inbound.context.messages)]
        referred = (inbound.structured.get("referred_product") or {}).get("product_retailer_id")
        for product in self.products:
            if referred and referred == product.get("id"):
                return product
        for text in texts:
            folded = fold(text)
            best = None
            for product in self.products:
                for keyword in product.get("keywords", []):
                    if re.search(rf"\b{re.escape(fold(keyword))}\b", folded):
                        if best is None or len(keyword) > best[0]:
                            best = (len(keyword), product)
            if best:
                return best[1]
        return None

    def _text(self, key: str, lang: str) -> str:
        value = self.knowledge.get(key) or {}
        return value.get(lang) or value.get("es") or ""


def _order_number(folded: str) -> str | None:
    match = _ORDER_NUMBER.search(folded)
    return (match.group(1) or match.group(2)) if match else None
