"""Alert checks over the deployment's state, sent once per cooldown through Slack, email or a
JSON webhook, with recovery announced and a history kept in Redis.

The checks read the sliding window every process writes to (``app.ops.window``), so any number
of evaluators see the same figures. Each alert's cooldown is a Redis key taken with ``SET NX``:
whichever evaluator takes it sends the alert, and two evaluators running at once (a second beat
by mistake, a retried task) still send it once. While the condition lasts, the alert is sent
again each time the cooldown lapses; when it clears, one evaluator wins the removal of the firing
mark and announces the recovery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from typing import Protocol

import redis
import requests

from app import keys
from app.config import Settings, get_settings
from app.errors import ConfigError
from app.ops.queues import SEND_QUEUE_PREFIX
from app.ops.state import DeploymentState

log = logging.getLogger(__name__)

WARNING = "warning"
CRITICAL = "critical"
FIRING = "firing"
RESOLVED = "resolved"

HISTORY_SIZE = 1000
"""Alert notifications kept in Redis for ``GET /v1/alerts``; older ones are trimmed."""

HANDLER_TIMEOUT = get_settings().alert_handler_timeout
"""Seconds a handler may take to deliver one notification before it counts as failed
(``ALERT_HANDLER_TIMEOUT``)."""

WEBHOOK_SIGNATURE_HEADER = "X-WA-Gateway-Signature"
"""``sha256=<hex HMAC of the body>`` on generic webhook notifications when a secret is set."""


class AlertConfigError(ConfigError, ValueError):
    """An alert handler is configured in a way it cannot work with."""


# --- Thresholds --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertThresholds:
    """Every threshold of the checks; each one is an ``ALERT_*`` setting (see :mod:`app.config`)."""

    send_error_rate: float = 0.05
    min_send_attempts: int = 20
    processing_seconds: float = 5.0
    ai_response_seconds: float = 5.0
    min_duration_samples: int = 5
    queue_size: int = 1000
    signature_failures: int = 10
    dead_letter_growth: int = 1
    heartbeat_timeout: float = 90.0
    cooldown_seconds: float = 900.0
    window_seconds: float = 300.0
    worker_queues: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> AlertThresholds:
        """The thresholds the ``ALERT_*`` settings give."""
        settings = settings or get_settings()
        return cls(
            send_error_rate=settings.alert_send_error_rate,
            min_send_attempts=settings.alert_min_send_attempts,
            processing_seconds=settings.alert_processing_seconds,
            ai_response_seconds=settings.alert_ai_response_seconds,
            min_duration_samples=settings.alert_min_duration_samples,
            queue_size=settings.alert_queue_size,
            signature_failures=settings.alert_signature_failures,
            dead_letter_growth=settings.alert_dead_letter_growth,
            heartbeat_timeout=settings.alert_heartbeat_timeout,
            cooldown_seconds=settings.alert_cooldown_seconds,
            window_seconds=settings.alert_window_seconds,
            worker_queues=tuple(
                q.strip() for q in settings.alert_worker_queues.split(",") if q.strip()
            ),
        )



# --- Checks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """What one check found: whether it fires, and a sentence an operator can act on."""

    firing: bool
    summary: str
    value: float | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class AlertRule:
    """A named check with its level."""

    name: str
    level: str
    title: str
    check: Callable[[DeploymentState, AlertThresholds], Finding]


def _minutes(seconds: float) -> str:
    """A window's length as people say it: ``20 s``, ``5 min``."""
    return f"{seconds:g} s" if seconds < 120 else f"{seconds / 60:.3g} min"


def check_send_error_rate(state: DeploymentState, t: AlertThresholds) -> Finding:
    rate, attempts = state.send_error_rate, state.send_attempts
    if rate is None or attempts < t.min_send_attempts:
        return Finding(
            False,
            f"{attempts:g} send attempts in the window, too few to judge",
            rate,
            t.send_error_rate,
        )
    return Finding(
        rate > t.send_error_rate,
        f"{rate:.1%} of {attempts:g} Graph API send attempts failed in the last "
        f"{_minutes(state.window_seconds)} (threshold {t.send_error_rate:.1%})",
        rate,
        t.send_error_rate,
    )


def _check_average(
    label: str,
    average: float | None,
    samples: float,
    limit: float,
    t: AlertThresholds,
    state: DeploymentState,
) -> Finding:
    if average is None or samples < t.min_duration_samples:
        return Finding(
            False, f"{samples:g} {label} samples in the window, too few to judge", average, limit
        )
    return Finding(
        average > limit,
        f"average {label} time {average:.2f}s over {samples:g} samples in the last "
        f"{_minutes(state.window_seconds)} (threshold {limit:g}s)",
        average,
        limit,
    )


def check_processing_time(state: DeploymentState, t: AlertThresholds) -> Finding:
    return _check_average(
        "message processing",
        state.processing_average,
        state.total("processing_count"),
        t.processing_seconds,
        t,
        state,
    )


def check_ai_response_time(state: DeploymentState, t: AlertThresholds) -> Finding:
    return _check_average(
        "AI response",
        state.ai_response_average,
        state.total("ai_count"),
        t.ai_response_seconds,
        t,
        state,
    )


def check_queue_backlog(state: DeploymentState, t: AlertThresholds) -> Finding:
    """Messages waiting: a send lane's per sending number (a batch task counts its messages),
    another queue's as a whole."""
    sizes = {q: n for q, n in state.queue_sizes.items() if not q.startswith(SEND_QUEUE_PREFIX)}
    for (lane, number), n in state.send_waiting.items():
        sizes[f"{SEND_QUEUE_PREFIX}{lane} of {number}"] = n
    over = {q: n for q, n in sizes.items() if n > t.queue_size}
    largest = max(sizes.values(), default=0)
    if not over:
        return Finding(False, f"largest queue holds {largest} messages", largest, t.queue_size)
    listed = ", ".join(f"{q}={n}" for q, n in sorted(over.items()))
    return Finding(True, f"queues above {t.queue_size} messages: {listed}", largest, t.queue_size)


def check_signature_failures(state: DeploymentState, t: AlertThresholds) -> Finding:
    failures = state.total("signature_failures")
    return Finding(
        failures > t.signature_failures,
        f"{failures:g} webhooks with a bad signature in the last {_minutes(state.window_seconds)} "
        f"(threshold {t.signature_failures}): a wrong app secret, or someone probing the endpoint",
        failures,
        t.signature_failures,
    )


def check_dead_letters_growing(state: DeploymentState, t: AlertThresholds) -> Finding:
    if state.dead_letters is None or state.dead_letters_growth is None:
        return Finding(False, "no dead-letter store in this deployment")
    growth = state.dead_letters_growth
    return Finding(
        growth >= t.dead_letter_growth and growth > 0,
        f"dead-letter store grew by {growth} to {state.dead_letters} in the last "
        f"{_minutes(state.window_seconds)}",
        growth,
        t.dead_letter_growth,
    )


def check_worker_heartbeat(state: DeploymentState, t: AlertThresholds) -> Finding:
    queues = t.worker_queues or tuple(state.heartbeat_ages)
    silent = [
        q
        for q in queues
        if (age := state.heartbeat_ages.get(q)) is None or age > t.heartbeat_timeout
    ]
    if not silent:
        return Finding(False, "every queue has a live worker")
    return Finding(
        True,
        f"no worker heartbeat within {t.heartbeat_timeout:g}s for queues: {', '.join(silent)}",
        len(silent),
        t.heartbeat_timeout,
    )


RULES: tuple[AlertRule, ...] = (
    AlertRule("send_error_rate", CRITICAL, "Send error rate high", check_send_error_rate),
    AlertRule("processing_time", WARNING, "Message processing slow", check_processing_time),
    AlertRule("ai_response_time", WARNING, "AI responses slow", check_ai_response_time),
    AlertRule("queue_backlog", WARNING, "Queue backlog", check_queue_backlog),
    AlertRule(
        "signature_failures", WARNING, "Webhook signature failures", check_signature_failures
    ),
    AlertRule(
        "dead_letters_growing", WARNING, "Dead-letter store growing", check_dead_letters_growing
    ),
    AlertRule("worker_heartbeat", CRITICAL, "No worker heartbeat", check_worker_heartbeat),
)
"""Every check, in the order they are evaluated."""

ALERT_NAMES = tuple(rule.name for rule in RULES)


# --- Notifications -----------------------------------------------------------------------------


@dataclass
class AlertEvent:
    """One notification: an alert firing, or its recovery."""

    name: str
    level: str
    status: str
    title: str
    summary: str
    value: float | None
    threshold: float | None
    at: float
    deployment: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    delivered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def headline(self) -> str:
        if self.status == RESOLVED:
            return f"[{self.deployment}] RESOLVED {self.title}"
        return f"[{self.deployment}] {self.level.upper()} {self.title}"


class AlertHandler(Protocol):
    """Delivers notifications somewhere; raises when it could not."""

    name: str

    def send(self, event: AlertEvent) -> None: ...


class SlackHandler:
    """A Slack incoming webhook. Its URL is a secret: it is never logged."""

    name = "slack"

    def __init__(self, webhook_url: str, session: requests.Session | None = None):
        self._url = webhook_url
        self.session = session or requests.Session()

    def send(self, event: AlertEvent) -> None:
        icon = ":white_check_mark:" if event.status == RESOLVED else ":rotating_light:"
        text = f"{icon} *{event.headline}*\n{event.summary}"
        response = self.session.post(self._url, json={"text": text}, timeout=HANDLER_TIMEOUT)
        if response.status_code >= 300:
            raise RuntimeError(f"Slack answered HTTP {response.status_code}")


class WebhookHandler:
    """POSTs the event as JSON; signs the body with HMAC-SHA256 when a secret is configured."""

    name = "webhook"

    def __init__(self, url: str, secret: str = "", session: requests.Session | None = None):
        self._url = url
        self._secret = secret
        self.session = session or requests.Session()

    def send(self, event: AlertEvent) -> None:
        body = json.dumps(event.to_dict(), separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if self._secret:
            digest = hmac.new(self._secret.encode(), body, hashlib.sha256).hexdigest()
            headers[WEBHOOK_SIGNATURE_HEADER] = f"sha256={digest}"
        response = self.session.post(self._url, data=body, headers=headers, timeout=HANDLER_TIMEOUT)
        if response.status_code >= 300:
            raise RuntimeError(f"alert webhook answered HTTP {response.status_code}")


class EmailHandler:
    """Email over SMTP: STARTTLS (default), implicit TLS or plain, with optional login."""

    name = "email"

    def __init__(
        self,
        host: str,
        recipients: Sequence[str],
        *,
        port: int = 587,
        sender: str = "",
        username: str = "",
        password: str = "",
        security: str = "starttls",
    ):
        if security not in ("starttls", "ssl", "none"):
            raise AlertConfigError("ALERT_SMTP_SECURITY must be starttls, ssl or none")
        self.host, self.port, self.recipients = host, port, list(recipients)
        self.sender = sender or f"wa-gateway@{socket.getfqdn()}"
        self._username, self._password, self.security = username, password, security

    def send(self, event: AlertEvent) -> None:
        message = EmailMessage()
        message["Subject"] = event.headline
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message.set_content(
            f"{event.summary}\n\nalert: {event.name}\nlevel: {event.level}\nstatus: {event.status}\n"
            f"value: {event.value}\nthreshold: {event.threshold}\n"
            f"at: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(event.at))}\n"
        )
        context = ssl.create_default_context()
        smtp_class = smtplib.SMTP_SSL if self.security == "ssl" else smtplib.SMTP
        kwargs = {"context": context} if self.security == "ssl" else {}
        with smtp_class(self.host, self.port, timeout=HANDLER_TIMEOUT, **kwargs) as smtp:
            if self.security == "starttls":
                smtp.starttls(context=context)
            if self._username:
                smtp.login(self._username, self._password)
            smtp.send_message(message)


def handlers_from_settings(settings: Settings | None = None) -> list[AlertHandler]:
    """The handlers the settings configure (any of Slack, webhook, email; possibly none)."""
    settings = settings or get_settings()
    handlers: list[AlertHandler] = []
    if settings.alert_slack_webhook_url:
        handlers.append(SlackHandler(settings.alert_slack_webhook_url))
    if settings.alert_webhook_url:
        handlers.append(WebhookHandler(settings.alert_webhook_url, settings.alert_webhook_secret))
    if settings.alert_email_to:
        handlers.append(
            EmailHandler(
                settings.alert_smtp_host,
                [r.strip() for r in settings.alert_email_to.split(",") if r.strip()],
                port=settings.alert_smtp_port,
                sender=settings.alert_email_from,
                username=settings.alert_smtp_user,
                password=settings.alert_smtp_password,
                security=settings.alert_smtp_security,
            )
        )
    return handlers


def deployment_name(settings: Settings | None = None) -> str:
    """How notifications name this deployment: ``ALERT_DEPLOYMENT_NAME``, else the host name."""
    return (settings or get_settings()).alert_deployment_name or socket.gethostname()


# --- History and evaluation --------------------------------------------------------------------


class AlertHistory:
    """Sent notifications, newest first, trimmed to :data:`HISTORY_SIZE`."""

    def __init__(self, redis_client: redis.Redis, size: int = HISTORY_SIZE):
        self.redis = redis_client
        self.size = size

    def add(self, event: AlertEvent) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.lpush(keys.OPS_ALERT_HISTORY, json.dumps(event.to_dict()))
        pipe.ltrim(keys.OPS_ALERT_HISTORY, 0, self.size - 1)
        pipe.expire(keys.OPS_ALERT_HISTORY, keys.OPS_ALERT_HISTORY_TTL)
        pipe.execute()

    def recent(self, limit: int = 100) -> list[dict]:
        return [json.loads(e) for e in self.redis.lrange(keys.OPS_ALERT_HISTORY, 0, limit - 1)]

    def firing(self) -> list[dict]:
        """The alerts firing now, with when they started."""
        pipe = self.redis.pipeline(transaction=False)
        for rule in RULES:
            pipe.get(keys.OPS_ALERT_FIRING.format(name=rule.name))
        return [
            {"name": rule.name, "level": rule.level, "title": rule.title, "since": float(since)}
            for rule, since in zip(RULES, pipe.execute(), strict=True)
            if since is not None
        ]


def dead_letter_growth(redis_client: redis.Redis, size: int, window: float, now: float) -> int:
    """Record a sample of the dead-letter size; return how much it grew over ``window``."""
    key = keys.OPS_DEAD_LETTER_SAMPLES
    pipe = redis_client.pipeline(transaction=False)
    pipe.zadd(key, {f"{now:.3f}:{size}": now})
    pipe.zremrangebyscore(key, "-inf", now - 2 * window)
    pipe.expire(key, keys.OPS_DEAD_LETTER_SAMPLES_TTL)
    pipe.zrangebyscore(key, now - window, "+inf", start=0, num=1)
    oldest = pipe.execute()[-1]
    first = int(oldest[0].rsplit(":", 1)[1]) if oldest else size
    return size - first


class AlertEvaluator:
    """Runs the checks against a state and notifies what changed."""

    def __init__(
        self,
        redis_client: redis.Redis,
        thresholds: AlertThresholds,
        handlers: Sequence[AlertHandler],
        *,
        rules: Sequence[AlertRule] = RULES,
        deployment: str | None = None,
    ):
        self.redis = redis_client
        self.thresholds = thresholds
        self.handlers = list(handlers)
        self.rules = list(rules)
        self.deployment = deployment or deployment_name()
        self.history = AlertHistory(redis_client)

    def evaluate(self, state: DeploymentState) -> list[AlertEvent]:
        """Check every rule; notify new alerts (once per cooldown) and recoveries. Returns what was sent."""
        if state.dead_letters is not None:
            state.dead_letters_growth = dead_letter_growth(
                self.redis, state.dead_letters, state.window_seconds, state.at
            )
        sent = []
        for rule in self.rules:
            try:
                finding = rule.check(state, self.thresholds)
            except Exception:  # noqa: BLE001 - one broken check must not silence the others
                log.exception("alert check %s failed", rule.name)
                continue
            event = (
                self._fire(rule, finding, state.at)
                if finding.firing
                else self._resolve(rule, finding, state.at)
            )
            if event is not None:
                self.dispatch(event)
                sent.append(event)
        return sent

    def _event(self, rule: AlertRule, finding: Finding, status: str, now: float) -> AlertEvent:
        return AlertEvent(
            name=rule.name,
            level=rule.level,
            status=status,
            title=rule.title,
            summary=finding.summary,
            value=finding.value,
            threshold=finding.threshold,
            at=now,
            deployment=self.deployment,
        )

    def _fire(self, rule: AlertRule, finding: Finding, now: float) -> AlertEvent | None:
        firing_key = keys.OPS_ALERT_FIRING.format(name=rule.name)
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(firing_key, now, nx=True, ex=keys.OPS_ALERT_FIRING_TTL)
        pipe.expire(firing_key, keys.OPS_ALERT_FIRING_TTL)
        pipe.execute()
        cooldown = max(1, int(round(self.thresholds.cooldown_seconds)))
        won = self.redis.set(
            keys.OPS_ALERT_COOLDOWN.format(name=rule.name), now, nx=True, ex=cooldown
        )
        return self._event(rule, finding, FIRING, now) if won else None

    def _resolve(self, rule: AlertRule, finding: Finding, now: float) -> AlertEvent | None:
        # GETDEL: of several evaluators seeing the recovery, exactly one gets the firing mark.
        if self.redis.getdel(keys.OPS_ALERT_FIRING.format(name=rule.name)) is None:
            return None
        self.redis.delete(
            keys.OPS_ALERT_COOLDOWN.format(name=rule.name)
        )  # a relapse alerts at once
        return self._event(rule, finding, RESOLVED, now)

    def dispatch(self, event: AlertEvent) -> None:
        """Send ``event`` through every handler; one failing never stops the others."""
        level = logging.INFO if event.status == RESOLVED else logging.WARNING
        log.log(
            level,
            "alert %s %s: %s",
            event.name,
            event.status,
            event.summary,
            extra={"alert": event.name},
        )
        notify(self.handlers, event)
        self.history.add(event)


def notify(handlers: Sequence[AlertHandler], event: AlertEvent) -> None:
    """Send ``event`` through every handler, noting which delivered it; one failing never stops
    the others. Logs handler names and the event's name only, never its summary."""
    for handler in handlers:
        try:
            handler.send(event)
        except Exception as exc:  # noqa: BLE001 - any handler failure is logged and skipped
            log.error(
                "alert handler %s failed to deliver %s: %s",
                handler.name,
                event.name,
                _describe(exc),
            )
            event.failed.append(handler.name)
        else:
            event.delivered.append(handler.name)


HANDOFF_NOTICE = "conversation_handoff"
"""The name of the notification sent when a conversation is handed to a person."""


def handoff_notice(handoff: dict, deployment: str | None = None) -> AlertEvent:
    """The notification of a handoff (the ``conversation.handoff`` event's data): which
    conversation, since when, who asked and why, so that someone answers it."""
    who = "the customer asked for a person" if handoff.get("by") == "customer" else "an operator"
    reason = f": {handoff['reason']}" if handoff.get("reason") else ""
    return AlertEvent(
        name=HANDOFF_NOTICE,
        level=WARNING,
        status=FIRING,
        title="Conversation handed to a person",
        summary=(
            f"Conversation {handoff['customer']} (number {handoff['phone_number_id']}) needs a "
            f"person ({who}{reason}). Answer with POST /v1/conversations/{handoff['customer']}"
            "/messages; end it with DELETE .../handoff."
        ),
        value=None,
        threshold=None,
        at=float(handoff.get("since") or time.time()),
        deployment=deployment or deployment_name(),
    )


def _describe(exc: BaseException) -> str:
    """An exception without its arguments where those may hold a URL (and a Slack secret)."""
    if isinstance(exc, requests.RequestException):
        return type(exc).__name__
    return f"{type(exc).__name__}: {exc}"
