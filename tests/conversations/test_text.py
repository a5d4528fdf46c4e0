from app.conversations.text import detect_language, entities, fold, normalise, terms


def test_folding_and_terms_ignore_accents_stop_words_and_plurals():
    assert fold("¿Cuánto CUESTA el envío?") == "¿cuanto cuesta el envio?"
    assert terms("¿Precios de los envíos?") == terms("precio del envio") == ["precio", "envio"]
    assert terms("What are the prices of the shoes?") == terms("price shoe")
    assert normalise("¿Cuánto  cuesta?") == normalise("cuanto cuesta")


def test_language_is_detected_in_both_languages_and_falls_back_when_unclear():
    assert detect_language("¿Tienen envío a Medellín?") == "es"
    assert detect_language("hola, quiero saber el precio") == "es"
    assert detect_language("How much is shipping to London?") == "en"
    assert detect_language("ok 👍", default="en") == "en"


def test_entities_in_both_languages():
    assert entities("El precio es $25") == ["price"]
    assert entities("How much does it cost?") == ["price"]
    assert "order" in entities("¿Dónde está mi pedido #12345?")
    assert "order" in entities("Where is my order?")
    assert entities("Quiero reservar una mesa") == ["booking"]
    assert entities("I'd like to book an appointment") == ["booking"]
    assert "product" in entities("¿Tienen la camiseta en talla M?")
    assert "complaint" in entities("El paquete llegó roto, quiero un reembolso")
    assert "complaint" in entities("The item arrived broken")
    assert entities("hola, buenos días") == []
