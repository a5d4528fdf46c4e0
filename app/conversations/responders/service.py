"""The reply service: the configured responder behind a cache, a deadline and a fallback reply,
so a customer's message is never left without an answer when the backend is slow or down."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from app import keys
from app.conversations.responders.cache import ReplyCache, count
from app.conversations.responders.interface import (
    Inbound,
    Reply,
    Responder,
    ResponderError,
    ResponderTimeout,
)

log = logging.getLogger(__name__)

FALLBACK_REPLIES = {
    "es": "Gracias por tu mensaje. Ahora mismo no puedo responderte, pero alguien del equipo te "
    "contestará muy pronto.",
    "en": "Thanks for your message. I can't answer right now, but someone from our team will get "
    "back to you shortly.",
}
"""The reply when the responder fails or times out and ``RESPONDER_FALLBACK_REPLY`` is unset."""


ResponseObserver = Callable[[str, float, str], None]
"""Called after every backend call with (backend name, seconds, outcome: ok|timeout|error)."""

_observers: list[ResponseObserver] = []


def add_response_observer(observer: ResponseObserver) -> None:
    """Be told the latency and outcome of every responder call, e.g. to feed the
    ``whatsapp_ai_response_seconds`` histogram."""
    _observers.append(observer)


def remove_response_observer(observer: ResponseObserver) -> None:
    """Stop telling ``observer``."""
    if observer in _observers:
        _observers.remove(observer)


class ReplyService:
    """The configured responder behind a cache, a deadline and a fallback reply."""

    def __init__(
        self,
        responder: Responder,
        *,
        redis_client: redis.Redis,
        timeout: float,
        fallback_reply: str = "",
        cache_ttl: int = keys.AI_REPLY_TTL,
    ):
        self.responder = responder
        self.redis = redis_client
        self.timeout = timeout
        self.fallback_reply = fallback_reply
        self.cache = (
            ReplyCache(redis_client, ttl=cache_ttl)
            if getattr(responder, "cacheable", False) and cache_ttl > 0
            else None
        )

    def reply(self, inbound: Inbound) -> Reply:
        """The reply to ``inbound``: cached, fresh, or the fallback. Never raises for a backend
        failure; only Redis errors escape (the task retries those)."""
        cache_key = None
        if self.cache is not None:
            cache_key = self.cache.key(self.responder, inbound)
            cached = self.cache.get(cache_key)
            if cached is not None:
                return Reply(cached, "cache")
        started = time.monotonic()
        outcome = "ok"
        try:
            text = call_with_timeout(lambda: self.responder.reply(inbound), self.timeout)
        except ResponderTimeout:
            outcome = "timeout"
        except Exception as exc:  # noqa: BLE001 - any backend failure gets the fallback reply
            outcome = "error"
            log.warning("responder %s failed: %s", self.responder.name, _describe(exc))
        seconds = time.monotonic() - started
        for observer in list(_observers):
            try:
                observer(self.responder.name, seconds, outcome)
            except Exception:  # noqa: BLE001 - a broken metric must not cost a reply
                log.exception("response observer failed")
        if outcome != "ok":
            count(self.redis, "timeouts" if outcome == "timeout" else "errors")
            log.warning(
                "responder %s %s after %.2fs; fallback reply for %s",
                self.responder.name,
                outcome,
                seconds,
                inbound.message_id,
            )
            return Reply(self.fallback(inbound), "fallback", seconds)
        text = text.strip() if isinstance(text, str) else None
        if text and cache_key is not None:
            self.cache.set(cache_key, text)  # type: ignore[union-attr]
        return Reply(text or None, "responder", seconds)

    def fallback(self, inbound: Inbound) -> str:
        """The configured fallback reply, or the built-in one in the customer's language."""
        return self.fallback_reply or FALLBACK_REPLIES.get(
            inbound.language or "", FALLBACK_REPLIES["es"]
        )


def call_with_timeout(call: Callable[[], Any], timeout: float) -> Any:
    """Run ``call`` and return its result, or raise :class:`ResponderTimeout` after ``timeout``.

    The call runs on a daemon thread so that a backend that ignores its own timeouts (a slow
    stream, a stuck DNS lookup) cannot hold the customer's reply; the thread is abandoned.
    """
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="responder-call", daemon=True).start()
    if not done.wait(timeout):
        raise ResponderTimeout(f"no reply within {timeout}s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _describe(exc: BaseException) -> str:
    # The class and message only: a requests exception's repr can carry headers with the key.
    return f"{type(exc).__name__}: {exc}" if isinstance(exc, ResponderError) else type(exc).__name__
