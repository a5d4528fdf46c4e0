"""Every Prometheus metric of the gateway, defined once, and the small functions that record them.

Processes record through the functions below, never through the metric objects, so that label
values stay bounded (an unknown value becomes ``other``; no phone number or id is ever a label)
and so that the figures the alert checks need also reach the shared window in Redis.

Across processes: when ``PROMETHEUS_MULTIPROC_DIR`` is set (``wa-gateway run`` sets it), every
process of a host writes its samples to files in that directory and one scrape of the web's
``/metrics`` adds them up. The directory must be emptied before the processes start, and hold
the files of one host only. Gauges of the deployment's state (queue depths, active
conversations, dead letters ...) are not per-process: they are read from Redis at scrape time.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import redis
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from app.config import get_settings
from app.ops import window as w
from app.ops.activity import ActiveConversations
from app.ops.queues import KOMBU_PRIORITY_STEPS
from app.ops.state import DeploymentState, firing_alerts, read_state
from app.whatsapp import errors

log = logging.getLogger(__name__)

MULTIPROC_DIR = get_settings().prometheus_multiproc_dir or None
"""The directory the processes of this host share their samples through; None: this process only."""
if MULTIPROC_DIR:
    os.makedirs(MULTIPROC_DIR, exist_ok=True)  # prometheus-client fails on first write otherwise

OTHER = "other"
"""The label value of anything outside a label's known set."""

MESSAGE_TYPES = frozenset(
    {
        "text", "image", "audio", "video", "document", "sticker", "location", "contacts",
        "interactive", "button", "template", "reaction", "order", "system", "request_welcome",
        "unsupported", "unknown", "status",
    }
)  # fmt: skip
"""Cloud API message types (sent and received); ``status`` labels status-only webhooks."""

SEND_STATUSES = frozenset({"sent", "failed", "dead_lettered"})
"""How a send ended: accepted by Meta, refused or given up, or moved to the dead-letter store."""

RETRY_REASONS = frozenset(
    {"throttled", "transient", "timeout", "connection", "rate_limited", "redis"}
)
"""Why a task was retried: Meta's throttling, a passing Graph failure, a timeout, no connection,
the gateway's own rate limiter, or Redis."""

AI_ACTION_TYPES = frozenset({"reply", "classify", "handoff", "fallback"})
"""What the responder was asked to do."""

CACHE_RESULTS = frozenset({"hit", "miss"})

_TASK_NAME = re.compile(r"^[a-z_]+\.[a-z_]+$")


def _error_classes(root: type) -> list[type]:
    found = [root]
    for sub in root.__subclasses__():
        found.extend(_error_classes(sub))
    return found


_ERROR_CLASSES = _error_classes(errors.GraphAPIError)
KNOWN_ERROR_CODES = frozenset(code for cls in _ERROR_CLASSES for code in cls.codes)
"""Graph error codes the gateway knows by number; template errors (132xxx) are known by range."""


def _snake(name: str) -> str:
    """``GraphTimeoutError`` -> ``timeout``, ``RecipientNotOnWhatsAppError`` -> ``recipient_not_on_whatsapp``."""
    name = name.removesuffix("Error").replace("WhatsApp", "Whatsapp")
    name = name.removeprefix("Graph") or name
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


ERROR_TYPES = frozenset(_snake(cls.__name__) for cls in _ERROR_CLASSES)
"""The gateway's error classes (see ``app.whatsapp.errors``), snake-cased: ``throttled``,
``transient``, ``permanent``, ``configuration``, ``window_closed`` ..."""


def bounded(value: Any, allowed: frozenset[str]) -> str:
    """``value`` as a label if it is in ``allowed``, else ``other``."""
    value = str(value or "").lower()
    return value if value in allowed else OTHER


def error_code_label(code: int | None) -> str:
    """A Graph error code as a label: the number when known, ``none`` without one, else ``other``."""
    if code is None:
        return "none"
    if code in KNOWN_ERROR_CODES or 132000 <= code < 133000:
        return str(code)
    return OTHER


def error_type_label(exc: BaseException) -> str:
    """The gateway's class of a Graph error, as a bounded label."""
    return bounded(_snake(type(exc).__name__), ERROR_TYPES)


# --- Per-process metrics (summed across processes by the multiprocess collector) --------------

MESSAGES_SENT = Counter(
    "whatsapp_messages_sent",
    "Outbound messages by type and how their sending ended (sent, failed, dead_lettered).",
    ["type", "status"],
)
MESSAGES_RECEIVED = Counter(
    "whatsapp_messages_received",
    "Inbound customer messages by type (each message once, redeliveries not counted).",
    ["type"],
)
API_ERRORS = Counter(
    "whatsapp_api_errors",
    "Failed Graph API calls by Meta's error code and the gateway's error class.",
    ["error_code", "error_type"],
)
MESSAGE_PROCESSING_SECONDS = Histogram(
    "whatsapp_message_processing_seconds",
    "Time an inbound worker spent on one webhook delivery, by its message type (status for "
    "status-only deliveries).",
    ["message_type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
AI_RESPONSE_SECONDS = Histogram(
    "whatsapp_ai_response_seconds",
    "Time the responder took to answer, by what it was asked to do.",
    ["ai_action_type"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60),
)
WEBHOOK_SIGNATURE_FAILURES = Counter(
    "whatsapp_webhook_signature_failures",
    "Webhook deliveries refused for a missing or invalid X-Hub-Signature-256.",
)
RATE_LIMIT_DEFERRALS = Counter(
    "whatsapp_rate_limit_deferrals",
    "Sends put off because Meta throttled the number or a local rate limit was reached.",
)
RETRIES = Counter("whatsapp_retries", "Task retries by reason.", ["reason"])
CACHE_LOOKUPS = Counter(
    "whatsapp_cache_lookups", "Reply-cache lookups by result (hit or miss).", ["result"]
)
PRICED_MESSAGES = Counter(
    "whatsapp_priced_messages",
    "Messages Meta priced in its status webhooks (each once), by sending number, category, "
    "billable and pricing model.",
    ["phone_number_id", "category", "billable", "pricing_model"],
)
TASKS_IN_PROGRESS = Gauge(
    "whatsapp_tasks_in_progress",
    "Celery tasks running now, by task name.",
    ["task"],
    multiprocess_mode="livesum",
)

STATE_METRICS = {
    "whatsapp_message_queue_size": "Messages waiting in each queue: a send lane's however many a task carries.",
    "whatsapp_send_queue_messages": "Messages waiting to be sent, by lane and sending number.",
    "whatsapp_tasks_unacked": "Tasks delivered to a worker and not yet acknowledged.",
    "whatsapp_active_conversations": "Customers who wrote within the active-conversation window (24 h).",
    "whatsapp_cache_hit_rate": "Reply-cache hits over lookups in the alert window; absent without lookups.",
    "whatsapp_dead_letters": "Messages in the dead-letter store.",
    "whatsapp_worker_heartbeat_age_seconds": "Seconds since a worker consuming the queue last beat; absent if none ever did.",
    "whatsapp_send_error_ratio": "Failed Graph calls over send attempts in the alert window (all processes).",
    "whatsapp_alert_firing": "1 while the gateway's own alert check is firing.",
    "whatsapp_redis_up": "1 when the scrape could read Redis.",
}
"""Gauges read from Redis at scrape time, by name, with their help text."""


# --- Recording ---------------------------------------------------------------------------------

_window: w.EventWindow | None = None


def _shared_window() -> w.EventWindow | None:
    """The Redis window this process adds to, or None when no Redis is configured."""
    global _window
    if _window is None:
        from app.db import get_redis

        redis_url = get_settings().redis_url
        if not redis_url:
            return None
        _window = w.EventWindow(get_redis(redis_url))
    return _window


def use_window(event_window: w.EventWindow | None) -> None:
    """Point recording at ``event_window`` (tests, or a process with its own Redis client)."""
    global _window
    _window = event_window


@dataclass
class HeldFigures:
    """What a :func:`held` block recorded for Redis, to be written once it ends."""

    amounts: dict[str, float] = field(default_factory=dict)
    customers: list[str] = field(default_factory=list)

    def queue(self, redis_client: redis.Redis, pipe: redis.client.Pipeline) -> bool:
        """Add these figures to ``pipe``, a pipeline of ``redis_client``, if the shared window
        lives there: whether they were (else :meth:`flush` writes them). A failure of these
        commands is for the caller to ignore: metrics must not fail the work."""
        shared = window_on(redis_client)
        if shared is None:
            return False
        if self.amounts:
            shared.queue_add(pipe, self.amounts)
        activity = ActiveConversations(shared.redis)
        for customer in self.customers:
            activity.queue_touch(pipe, customer)
        return True

    def flush(self) -> None:
        """Write these figures to the shared window in one round trip. Never raises."""
        shared = _shared_window()
        if shared is None or not (self.amounts or self.customers):
            return
        try:
            pipe = shared.redis.pipeline(transaction=False)
            self.queue(shared.redis, pipe)
            pipe.execute()
        except (RedisError, OSError) as exc:
            log.debug("window and activity not updated: %s", type(exc).__name__)


_batch: ContextVar[HeldFigures | None] = ContextVar("metrics_batch", default=None)


@contextmanager
def held() -> Iterator[HeldFigures | None]:
    """Hold the block's additions to the shared window and its conversation activity, for the
    caller to write once the block has ended, with commands of its own
    (:meth:`HeldFigures.queue`) or alone (:meth:`HeldFigures.flush`): one round trip for a
    task's figures instead of one per figure. The totals are the same; Prometheus's own counters
    are not held. Inside another such block it yields None: the outer one holds the figures."""
    if _batch.get() is not None:
        yield None
        return
    batch = HeldFigures()
    token = _batch.set(batch)
    try:
        yield batch
    finally:
        _batch.reset(token)


@contextmanager
def batched() -> Iterator[None]:
    """:func:`held`, the figures written in one pipeline when the block ends, raising or not."""
    with held() as batch:
        try:
            yield
        finally:
            if batch is not None:
                batch.flush()


def _add(amounts: dict[str, float]) -> None:
    batch = _batch.get()
    if batch is not None:
        for name, amount in amounts.items():
            batch.amounts[name] = batch.amounts.get(name, 0.0) + amount
        return
    shared = _shared_window()
    if shared is not None:
        shared.add(amounts)


def window_on(redis_client: Any) -> w.EventWindow | None:
    """The alert window this process adds to, if it is kept on ``redis_client`` (the very
    client): then a count can ride a pipeline of that client (:meth:`EventWindow.queue_add`)."""
    shared = _shared_window()
    return shared if shared is not None and shared.redis is redis_client else None


def record_sent(message_type: str | None, status: str, *, windowed: bool = False) -> None:
    """One outbound message's sending ended with ``status`` (sent, failed, dead_lettered);
    ``windowed`` if the caller already added a ``sent`` to the alert window (:func:`window_on`)."""
    status = bounded(status, SEND_STATUSES)
    MESSAGES_SENT.labels(type=bounded(message_type, MESSAGE_TYPES), status=status).inc()
    if status == "sent" and not windowed:
        _add({w.SENT: 1})


def record_received(message_type: str | None) -> None:
    """One new inbound message of ``message_type``."""
    MESSAGES_RECEIVED.labels(type=bounded(message_type, MESSAGE_TYPES)).inc()


def record_api_error(code: int | None, error_type: str) -> None:
    """One failed Graph API call; counts towards the send error rate."""
    API_ERRORS.labels(
        error_code=error_code_label(code), error_type=bounded(error_type, ERROR_TYPES)
    ).inc()
    _add({w.SEND_ERRORS: 1})


def record_graph_error(exc: errors.GraphAPIError) -> None:
    """:func:`record_api_error` for a raised Graph error."""
    record_api_error(exc.code, error_type_label(exc))


def observe_processing(message_type: str | None, seconds: float) -> None:
    """An inbound delivery took ``seconds`` to process."""
    MESSAGE_PROCESSING_SECONDS.labels(message_type=bounded(message_type, MESSAGE_TYPES)).observe(
        seconds
    )
    _add({w.PROCESSING_SUM: seconds, w.PROCESSING_COUNT: 1})


def observe_priced(message: Any) -> None:
    """Count one message Meta priced (an ``app.delivery.pricing.PricedMessage``)."""
    PRICED_MESSAGES.labels(
        message.phone_number_id,
        message.category,
        str(message.billable).lower(),
        message.pricing_model,
    ).inc()


def observe_ai_response(action: str, seconds: float) -> None:
    """The responder took ``seconds`` for an ``action`` (reply, classify, handoff, fallback)."""
    AI_RESPONSE_SECONDS.labels(ai_action_type=bounded(action, AI_ACTION_TYPES)).observe(seconds)
    _add({w.AI_SUM: seconds, w.AI_COUNT: 1})


@contextmanager
def time_ai_response(action: str) -> Iterator[None]:
    """Observe the time the block takes as one AI response, even when it raises."""
    started = time.perf_counter()
    try:
        yield
    finally:
        observe_ai_response(action, time.perf_counter() - started)


def record_signature_failure() -> None:
    """A webhook was refused for its signature."""
    WEBHOOK_SIGNATURE_FAILURES.inc()
    _add({w.SIGNATURE_FAILURES: 1})


def record_rate_limit_deferral() -> None:
    """A send was put off by a rate limit (Meta's or the gateway's)."""
    RATE_LIMIT_DEFERRALS.inc()


def record_retry(reason: str) -> None:
    """A task will be tried again, because of ``reason`` (see :data:`RETRY_REASONS`)."""
    RETRIES.labels(reason=bounded(reason, RETRY_REASONS)).inc()


def retry_reason(exc: BaseException) -> str:
    """The retry reason of a Graph error."""
    if isinstance(exc, errors.ThrottledError):
        return "throttled"
    if isinstance(exc, errors.GraphTimeoutError):
        return "timeout"
    if isinstance(exc, errors.GraphConnectionError):
        return "connection"
    if isinstance(exc, RedisError):
        return "redis"
    return "transient"


def record_cache_lookup(hit: bool) -> None:
    """One reply-cache lookup; feeds ``whatsapp_cache_hit_rate``."""
    CACHE_LOOKUPS.labels(result="hit" if hit else "miss").inc()
    _add({w.CACHE_HITS if hit else w.CACHE_MISSES: 1})


def record_conversation_activity(customer: str) -> None:
    """The customer keyed ``customer`` wrote; feeds ``whatsapp_active_conversations``."""
    batch = _batch.get()
    if batch is not None:
        batch.customers.append(customer)
        return
    shared = _shared_window()
    if shared is None:
        return
    try:
        ActiveConversations(shared.redis).touch(customer)
    except (RedisError, OSError) as exc:
        log.debug("conversation activity not recorded: %s", type(exc).__name__)


def task_label(name: str | None) -> str:
    """A Celery task name as a label (the gateway's names are ``area.verb``)."""
    return name if name and _TASK_NAME.match(name) else OTHER


class TimedResponder:
    """Wraps a responder so that each answer is observed as an AI response of ``action``."""

    def __init__(self, responder: Any, action: str = "reply"):
        self.responder = responder
        self.action = action

    def reply(self, inbound: Any) -> str | None:
        with time_ai_response(self.action):
            return self.responder.reply(inbound)


# --- Processes ---------------------------------------------------------------------------------


def mark_process_dead(pid: int) -> None:
    """Drop the live gauges of a process that exited (its counters stay: they only add up)."""
    if MULTIPROC_DIR:
        multiprocess.mark_process_dead(pid, MULTIPROC_DIR)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_dead_processes() -> list[int]:
    """Mark dead every process whose live gauges remain but which is gone (killed with SIGKILL,
    so no exit hook ran). Valid because the directory holds one host's processes only."""
    if not MULTIPROC_DIR:
        return []
    dead = set()
    for path in glob.glob(os.path.join(MULTIPROC_DIR, "gauge_live*_*.db")):
        pid_text = os.path.basename(path).rsplit("_", 1)[-1].removesuffix(".db")
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            dead.add(int(pid_text))
    for pid in dead:
        mark_process_dead(pid)
    return sorted(dead)


def clean_multiproc_dir(path: str) -> None:
    """Empty a multiprocess directory before the processes start (stale files would add up)."""
    os.makedirs(path, exist_ok=True)
    for stale in glob.glob(os.path.join(path, "*.db")):
        os.remove(stale)


# --- Scraping ----------------------------------------------------------------------------------


class StateCollector(Collector):
    """Gauges of the deployment's state, read from Redis when Prometheus scrapes."""

    def __init__(
        self,
        redis_client: redis.Redis,
        queues: Sequence[str],
        *,
        priority_steps: Sequence[int] = KOMBU_PRIORITY_STEPS,
        alert_names: Sequence[str] = (),
    ):
        self.redis = redis_client
        self.queues = list(queues)
        self.priority_steps = priority_steps
        self.alert_names = list(alert_names)

    def _gauge(self, name: str, labels: Sequence[str] = ()) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, STATE_METRICS[name], labels=list(labels) or None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = self._gauge("whatsapp_redis_up")
        try:
            state = read_state(self.redis, self.queues, priority_steps=self.priority_steps)
            firing = firing_alerts(self.redis, self.alert_names)
        except (RedisError, OSError) as exc:
            log.warning("metrics scrape could not read Redis: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from self._state_gauges(state)
        alerts = self._gauge("whatsapp_alert_firing", ["alert"])
        for name, is_firing in firing.items():
            alerts.add_metric([name], 1 if is_firing else 0)
        yield alerts

    def _state_gauges(self, state: DeploymentState) -> Iterator[GaugeMetricFamily]:
        queue_size = self._gauge("whatsapp_message_queue_size", ["queue"])
        for queue, size in state.queue_sizes.items():
            queue_size.add_metric([queue], size)
        yield queue_size
        waiting = self._gauge("whatsapp_send_queue_messages", ["lane", "phone_number_id"])
        for (lane, number), count in sorted(state.send_waiting.items()):
            waiting.add_metric([lane, number], count)
        yield waiting
        unacked = self._gauge("whatsapp_tasks_unacked")
        unacked.add_metric([], state.unacked)
        yield unacked
        active = self._gauge("whatsapp_active_conversations")
        active.add_metric([], state.active_conversations)
        yield active
        if state.cache_hit_rate is not None:
            hit_rate = self._gauge("whatsapp_cache_hit_rate")
            hit_rate.add_metric([], state.cache_hit_rate)
            yield hit_rate
        if state.dead_letters is not None:
            dead = self._gauge("whatsapp_dead_letters")
            dead.add_metric([], state.dead_letters)
            yield dead
        if state.send_error_rate is not None:
            error_ratio = self._gauge("whatsapp_send_error_ratio")
            error_ratio.add_metric([], state.send_error_rate)
            yield error_ratio
        ages = self._gauge("whatsapp_worker_heartbeat_age_seconds", ["queue"])
        for queue, age in state.heartbeat_ages.items():
            if age is not None:
                ages.add_metric([queue], age)
        yield ages


def render(collector: StateCollector) -> tuple[bytes, str]:
    """The exposition text of one scrape: every local process's metrics plus the state gauges."""
    state_registry = CollectorRegistry(auto_describe=False)
    state_registry.register(collector)
    if MULTIPROC_DIR:
        sweep_dead_processes()
        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes, MULTIPROC_DIR)
    else:
        processes = REGISTRY
    return generate_latest(processes) + generate_latest(state_registry), CONTENT_TYPE_LATEST
