"""The reply service around the HTTP backends: cache, timeout, failures, metrics hooks."""

from __future__ import annotations

import logging

import pytest

from app.conversations.context import Conversation
from app.conversations.profile import Profile
from app.conversations.ranking import rank_context
from app.conversations.responders.agent_webhook import AgentWebhookResponder
from app.conversations.responders.cache import cache_stats
from app.conversations.responders.factory import build_responder
from app.conversations.responders.interface import Inbound
from app.conversations.responders.openai_compatible import OpenAIChatResponder
from app.conversations.responders.rules import RulesResponder
from app.conversations.responders.service import (
    FALLBACK_REPLIES,
    ReplyService,
    add_response_observer,
    remove_response_observer,
)
from tests.conversations.helpers import NUMBER, FakeAIBackend, exchange, reply
from tests.stack import settings_of

pytestmark = pytest.mark.any_redis

API_KEY = "sk-test-secret-key-0123456789"


@pytest.fixture
def backend():
    server = FakeAIBackend(answer="La camiseta roja cuesta 25 USD.")
    yield server
    server.close()


def openai(backend: FakeAIBackend, timeout: float = 5.0) -> OpenAIChatResponder:
    return OpenAIChatResponder(
        base_url=backend.url + "/v1", model="test-model", api_key=API_KEY, timeout=timeout
    )


def question(text: str, wa_id: str = "573001234567", **kwargs) -> Inbound:
    kwargs.setdefault("language", "es")
    return Inbound(wa_id=wa_id, text=text, phone_number_id=NUMBER, **kwargs)


def test_the_second_identical_question_is_a_cache_hit(redis_client, backend):
    service = ReplyService(openai(backend), redis_client=redis_client, timeout=5)
    first = service.reply(question("¿Cuánto cuesta la camiseta roja?"))
    # Another customer, the same question (accents and case aside), the same (empty) context.
    second = service.reply(question("cuanto cuesta la CAMISETA roja", wa_id="573009999999"))
    assert first.text == second.text == "La camiseta roja cuesta 25 USD."
    assert (first.source, second.source) == ("responder", "cache")
    assert len(backend.requests) == 1
    stats = cache_stats(redis_client)
    assert (stats.hits, stats.misses, stats.hit_rate) == (1, 1, 0.5)


def test_a_different_context_is_not_served_from_the_cache(redis_client, backend):
    service = ReplyService(openai(backend), redis_client=redis_client, timeout=5)
    chat = Conversation(NUMBER, "1", [exchange("1", "Busco zapatillas", age=60)])
    service.reply(question("¿Precio?"))
    service.reply(question("¿Precio?", context=rank_context(chat, "¿Precio?")))
    assert len(backend.requests) == 2
    assert cache_stats(redis_client).hits == 0


def test_the_ranked_context_reaches_the_backend_as_chat_messages(redis_client, backend):
    chat = Conversation(
        NUMBER,
        "1",
        [exchange("1", "¿Cuánto cuesta la camiseta?", age=60), reply("2", "25 USD", age=50)],
    )
    text = "¿y el envío?"
    inbound = question(text, context=rank_context(chat, text), profile=Profile(preference="quick"))
    ReplyService(openai(backend), redis_client=redis_client, timeout=5).reply(inbound)
    (sent,) = backend.requests
    assert sent["model"] == "test-model"
    roles = [(m["role"], m["content"]) for m in sent["messages"][1:]]
    assert roles == [
        ("user", "¿Cuánto cuesta la camiseta?"),
        ("assistant", "25 USD"),
        ("user", "¿y el envío?"),
    ]
    assert "Spanish" in sent["messages"][0]["content"]
    assert backend.headers[0]["Authorization"] == f"Bearer {API_KEY}"
    assert "1" not in sent["messages"][0]["content"].split()  # the customer is not named


def test_a_slow_backend_gets_the_fallback_reply_and_a_metric(redis_client, caplog):
    slow = FakeAIBackend(delay=3.0)
    seen = []
    observer = lambda name, seconds, outcome: seen.append((name, outcome, seconds))  # noqa: E731
    add_response_observer(observer)
    try:
        service = ReplyService(openai(slow, timeout=0.5), redis_client=redis_client, timeout=0.5)
        with caplog.at_level(logging.INFO):
            answer = service.reply(question("¿Tienen envío a Cali?"))
    finally:
        remove_response_observer(observer)
        slow.close()
    assert answer.source == "fallback"
    assert answer.text == FALLBACK_REPLIES["es"]
    assert seen[0][:2] == ("openai:test-model", "timeout") and seen[0][2] < 2.5
    assert cache_stats(redis_client).timeouts == 1
    assert API_KEY not in caplog.text
    # The fallback is not cached: the next question asks the backend again.
    assert cache_stats(redis_client).hits == 0


def test_a_failing_backend_gets_the_configured_fallback(redis_client, caplog):
    broken = FakeAIBackend(status=500)
    try:
        service = ReplyService(
            openai(broken), redis_client=redis_client, timeout=5, fallback_reply="Ya te atendemos."
        )
        with caplog.at_level(logging.INFO):
            answer = service.reply(question("Hola"))
    finally:
        broken.close()
    assert (answer.text, answer.source) == ("Ya te atendemos.", "fallback")
    assert cache_stats(redis_client).errors == 1
    assert "HTTP 500" in caplog.text and API_KEY not in caplog.text


def test_an_unreachable_backend_gets_the_fallback(redis_client):
    gone = FakeAIBackend()
    gone.close()
    service = ReplyService(openai(gone), redis_client=redis_client, timeout=2)
    assert service.reply(question("Hello", language="en")).text == FALLBACK_REPLIES["en"]


def test_the_agent_webhook_gets_the_conversation_and_its_reply_is_sent(redis_client, backend):
    agent = AgentWebhookResponder(url=backend.url + "/agent", token="agent-token-123", timeout=5)
    chat = Conversation(NUMBER, "573001234567", [exchange("1", "Hola", age=30)])
    inbound = question("¿Precio?", name="Ana", context=rank_context(chat, "¿Precio?"))
    answer = ReplyService(agent, redis_client=redis_client, timeout=5).reply(inbound)
    assert answer.text == "La camiseta roja cuesta 25 USD."
    (sent,) = backend.requests
    assert sent["conversation"]["wa_id"] == "573001234567"
    assert sent["message"]["text"] == "¿Precio?"
    assert [m["text"] for m in sent["context"]["messages"]] == ["Hola"]
    assert backend.headers[0]["Authorization"] == "Bearer agent-token-123"


def test_the_rules_responder_is_not_cached(redis_client):
    service = ReplyService(RulesResponder(), redis_client=redis_client, timeout=5)
    service.reply(question("Hola"))
    service.reply(question("Hola"))
    assert cache_stats(redis_client).hit_rate is None


def test_the_backend_is_chosen_by_configuration():
    assert build_responder(settings_of({})).name == "rules"
    settings = settings_of(
        {"RESPONDER_BACKEND": "openai", "OPENAI_API_KEY": API_KEY, "OPENAI_MODEL": "m"}
    )
    assert build_responder(settings).name == "openai:m"
    assert API_KEY not in repr(settings)
    settings = settings_of(
        {"RESPONDER_BACKEND": "http", "AGENT_WEBHOOK_URL": "https://agent.example/hook"}
    )
    assert build_responder(settings).name.startswith("http:")
