"""Bilingual (Spanish, English) text analysis: accent folding, terms, language, entities.

Deliberately lexical and dependency-free: it runs on every message in every worker, and its
results (terms, entities) must be the same in every process so the cache keys and the ranking
agree.
"""

from __future__ import annotations

import re
import unicodedata

ENTITY_KINDS = ("price", "order", "booking", "product", "complaint")
"""The entities that make a past message important, whatever its age."""

_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)?")

STOP_WORDS_ES = frozenset(
    """a al algo algun alguna algunas alguno algunos ante antes aqui asi aun cada como con contra
    cual cuales cuando de del desde donde dos el ella ellas ello ellos en entre era eran es esa esas
    ese eso esos esta estaba estado estan estar estas este esto estos estoy fue fueron ha hace hacer
    han hasta hay la las le les lo los mas me mi mis mismo mucho muy nada ni no nos nosotros o otra
    otro otros para pero poco por porque puede pues que quien se sea ser si sido sin sobre solo son
    su sus tal tambien te tengo ti tiene tienen todo todos tu tus un una uno unos usted ustedes va
    vamos y ya yo eh oye pues bueno gracias favor hola""".split()
)
"""Spanish function words (accent-folded): they say nothing about what a message is about."""

STOP_WORDS_EN = frozenset(
    """a about above after again all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has
    have having he her here hers him his how i if in into is it its itself just me more most my
    no nor not now of off on once only or other our ours out over own same she should so some such
    than that the their them then there these they this those through to too under until up very
    was we were what when where which while who whom why will with would you your yours hi hello
    hey thanks thank please ok okay""".split()
)
"""English function words: the same role as :data:`STOP_WORDS_ES`."""

STOP_WORDS = STOP_WORDS_ES | STOP_WORDS_EN

# Marker words, accent-folded, that say which language a message is in.
_LANGUAGE_MARKERS = {
    "es": frozenset(
        """hola que como cuanto cuanta cuesta precio pedido donde cuando gracias por favor quiero
        necesito tienen tiene hay envio horario esta estan para con los las el la una un es mi
        buenos buenas dias tardes noches si y de del persona humano ayuda puedo puedes dime algo
        saber sobre esto eso tengo hola nada bien vale claro tambien pero muy""".split()
    ),
    "en": frozenset(
        """hi hello hey what how much price order where when thanks thank please want need do does
        have has shipping hours is are the a an my for with you your can could yes no and of
        person human help morning evening tell something i it this that know about would like
        get there any just thanks good great okay but very""".split()
    ),
}

# Entity patterns over accent-folded text, in both languages.
_ENTITY_PATTERNS = {
    "price": re.compile(
        r"[$€£]\s?\d|\d\s?(?:usd|eur|cop|mxn|ars|clp|pesos?|dolares|dollars?|euros?)\b"
        r"|\b(?:precio|precios|cuesta|cuestan|cuanto|costo|coste|valor|tarifa|descuento|oferta"
        r"|price|prices|cost|costs|how much|discount|fee|quote|cotizacion)\b"
    ),
    "order": re.compile(
        r"\b(?:pedido|pedidos|orden|ordenes|compra|envio|envios|rastreo|seguimiento|entrega"
        r"|order|orders|purchase|shipping|shipment|tracking|delivery|package|paquete)\b"
        r"|#\s?\d{3,}"
    ),
    "booking": re.compile(
        r"\b(?:reserva|reservas|reservar|reservacion|cita|citas|agendar|turno|mesa"
        r"|booking|bookings|book|reservation|appointment|schedule|table)\b"
    ),
    "product": re.compile(
        r"\b(?:producto|productos|articulo|modelo|talla|color|stock|disponible|disponibles"
        r"|catalogo|referencia|camiseta|zapatos|product|products|item|items|model|size|colour"
        r"|available|availability|catalog|catalogue|sku)\b"
    ),
    "complaint": re.compile(
        r"\b(?:queja|reclamo|reclamacion|problema|roto|rota|danado|defectuoso|mal|malo|pesimo"
        r"|devolucion|reembolso|nunca llego|no llego|tarde|molesto"
        r"|complaint|complain|problem|issue|broken|damaged|defective|wrong|bad|terrible|refund"
        r"|return|never arrived|late|angry|disappointed)\b"
    ),
}


def fold(text: str) -> str:
    """Lower-case ``text`` and strip accents, so "Qué" and "que" compare equal."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """The accent-folded words of ``text``, in order, stop words included."""
    return _WORD.findall(fold(text))


def stem(word: str) -> str:
    """A light plural stemmer for both languages: "prices"/"price" and "colores"/"color" meet.

    Drops a final "s" then a final "e": crude, but the same on both sides of a comparison, and a
    real stemmer merges words it should not in short customer messages.
    """
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


def terms(text: str) -> list[str]:
    """The content terms of ``text``: folded, stop words removed, lightly stemmed."""
    return [stem(w) for w in words(text) if w not in STOP_WORDS and len(w) > 1]


def normalise(text: str) -> str:
    """``text`` folded to its words, so "¿Cuánto cuesta?" and "cuanto  cuesta" are the same."""
    return " ".join(words(text))


def detect_language(text: str, default: str | None = None) -> str | None:
    """ "es" or "en" by marker words and Spanish-only characters; ``default`` when unclear."""
    if re.search(r"[¿¡ñ]", text.lower()):
        return "es"
    found = words(text)
    scores = {lang: sum(w in markers for w in found) for lang, markers in _LANGUAGE_MARKERS.items()}
    if scores["es"] == scores["en"]:
        return default
    return "es" if scores["es"] > scores["en"] else "en"


def entities(text: str) -> list[str]:
    """The entity kinds (:data:`ENTITY_KINDS`) ``text`` mentions, in that order."""
    folded = fold(text)
    return [kind for kind, pattern in _ENTITY_PATTERNS.items() if pattern.search(folded)]
