"""The offline responder answers each intent in the customer's language, using the context."""

import pytest

from app.conversations.context import Conversation
from app.conversations.profile import Profile
from app.conversations.ranking import rank_context
from app.conversations.responders.interface import Inbound
from app.conversations.responders.rules import HANDOFF_REPLIES, RulesResponder
from tests.conversations.helpers import NUMBER, exchange, reply

rules = RulesResponder()


def ask(text: str, **kwargs) -> str:
    return rules.reply(Inbound(wa_id="573001234567", text=text, **kwargs))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Hola", "¡Hola Ana!"),
        ("Hello there", "Hi Ana!"),
        ("¿Cuánto cuesta la camiseta roja?", "La camiseta roja cuesta 25 USD"),
        ("How much are the sneakers?", "The white sneakers costs 60 USD"),
        ("¿A qué hora abren?", "Abrimos de lunes a viernes"),
        ("What are your opening hours?", "We are open Monday to Friday"),
        ("¿Dónde está mi pedido #48213?", "pedido #48213"),
        ("Where is my order?", "What is the order number"),
        ("Quiero hablar con una persona", HANDOFF_REPLIES["es"]),
        ("Can I talk to a real person?", HANDOFF_REPLIES["en"]),
        ("asdf qwer", "Puedo ayudarte con precios"),
        ("Tell me something", "I can help with prices"),
    ],
)
def test_each_intent_in_both_languages(text, expected):
    assert expected in ask(text, name="Ana")


def test_a_follow_up_is_answered_about_the_product_in_the_context():
    chat = Conversation(
        NUMBER,
        "573001234567",
        [
            exchange("1", "Hola", age=120),
            reply("2", "¡Hola! ¿En qué puedo ayudarte?", age=110),
            exchange("3", "¿Cuánto cuesta la camiseta roja?", age=60),
            reply("4", "La camiseta roja cuesta 25 USD.", age=50),
        ],
    )
    question = "¿Y cuánto tarda el envío de esa?"
    answer = ask(question, context=rank_context(chat, question))
    assert answer == "La camiseta roja llega en 1 a 2 días hábiles."
    # Without the context the same question gets the general answer.
    assert ask(question) == "El envío tarda de 2 a 4 días hábiles."


def test_an_order_number_given_earlier_is_remembered():
    chat = Conversation(NUMBER, "1", [exchange("1", "Mi número de pedido es #77881", age=60)])
    answer = ask("¿y mi pedido?", context=rank_context(chat, "¿y mi pedido?"))
    assert "#77881" in answer


def test_a_customer_who_wants_detail_gets_it():
    detailed = ask("¿Cuánto cuestan las zapatillas?", profile=Profile(preference="detailed"))
    assert (
        detailed == "Las zapatillas blancas cuestan 60 USD. Tallas 36 a 45." or "Tallas" in detailed
    )


def test_an_ambiguous_message_is_answered_in_the_profile_language():
    assert "I can help" in ask("👍", profile=Profile(language="en"))
    assert "Puedo ayudarte" in ask("👍", profile=Profile(language="es"))
