from app.conversations.context import Conversation, Summary
from app.conversations.ranking import rank_context
from tests.conversations.helpers import NUMBER, exchange, reply

DAY = 24 * 3600


def conversation(*exchanges, summary: Summary | None = None) -> Conversation:
    return Conversation(NUMBER, "573001234567", list(exchanges), summary or Summary())


def test_a_message_about_a_product_outranks_an_old_greeting():
    chat = conversation(
        exchange("g", "Hola, buenos días", age=3 * DAY),
        exchange("p", "¿Tienen la camiseta roja en talla M?", age=3 * DAY - 60),
        exchange("x", "ok", age=2 * DAY),
        reply("r", "Perfecto", age=2 * DAY - 10),
    )
    ranked = rank_context(chat, "¿Y cuánto cuesta la camiseta?", limit=3)
    ids = [e.id for e in ranked.messages]
    assert "p" in ids and "g" not in ids
    assert ranked.summary.startswith("1 earlier messages")
    assert ranked.omitted == 1


def test_relevance_matches_across_accents_and_plurals():
    chat = conversation(
        exchange("a", "Me interesan los envíos internacionales", age=5 * DAY),
        exchange("b", "Qué bonito día hace", age=5 * DAY),
        exchange("c", "Todo bien", age=5 * DAY),
    )
    ranked = rank_context(chat, "¿cuánto tarda un envio internacional?", limit=1)
    assert [e.id for e in ranked.messages] == ["a"]


def test_the_last_hour_outranks_older_small_talk():
    chat = conversation(
        exchange("old", "jaja vale", age=2 * DAY),
        exchange("recent", "perfecto, gracias", age=600),
        exchange("latest", "una pregunta", age=60),
    )
    ranked = rank_context(chat, "otra cosa", limit=2)
    assert [e.id for e in ranked.messages] == ["recent", "latest"]


def test_past_the_limit_the_rest_is_summarised_and_the_order_is_kept():
    exchanges = [exchange(f"m{i}", f"mensaje {i} sobre zapatos", age=7200 - i) for i in range(15)]
    folded = Summary(
        exchanges=40, since=1.0, until=2.0, topics={"reserva": 3}, entities={"booking": 3}
    )
    ranked = rank_context(conversation(*exchanges, summary=folded), "zapatos", limit=10)
    assert len(ranked.messages) == 10
    times = [e.at for e in ranked.messages]
    assert times == sorted(times)
    assert ranked.omitted == 45
    assert ranked.summary.startswith("45 earlier messages") and "reserva" in ranked.summary


def test_the_message_being_answered_is_not_its_own_context():
    chat = conversation(exchange("q", "¿Precio?"), exchange("prev", "Hola", age=30))
    ranked = rank_context(chat, "¿Precio?", exclude_id="q")
    assert [e.id for e in ranked.messages] == ["prev"]


def test_equal_contexts_have_equal_fingerprints_whatever_their_times():
    a = rank_context(conversation(exchange("1", "Hola", age=10)), "precio")
    b = rank_context(conversation(exchange("2", "hola", age=500)), "precio")
    c = rank_context(conversation(exchange("3", "Adiós", age=10)), "precio")
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
