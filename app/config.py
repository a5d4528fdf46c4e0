"""The one settings object, read once per process from the environment and a ``.env`` file.

Every process - web, workers, beat, the CLI, ``celeryconfig`` - takes its configuration from
:func:`get_settings`; no other module reads the environment. Each field names its environment
variable, its default and its reason. A malformed value stops the process with a
:class:`ConfigError` that names the variable and never shows the value.

The Meta credentials and ``REDIS_URL`` are checked for presence only by the processes that need
them (:meth:`Settings.require_gateway`): the simulator and the key tools run without them.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from functools import lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app import keys
from app.errors import ConfigError

__all__ = [
    "ConfigError",
    "Settings",
    "get_settings",
    "load_settings",
    "mask_secret",
    "mask_url_password",
    "secret_values",
]

DEFAULT_API_BASE_URL = "https://graph.facebook.com"
"""Meta's Graph API host."""

DEFAULT_API_VERSION = "v23.0"
"""The Graph API version whose contract the client and simulator follow."""

ENV_FILE = ".env"
"""Read from the working directory when present; the real environment wins over it."""

OPS_WINDOW_LIMIT = keys.OPS_WINDOW_TTL - 2 * keys.OPS_BUCKET_SECONDS
"""The longest alert window: every bucket it reads must still exist."""

DEFAULT_CONTEXT_MESSAGES = 10
"""Messages of context handed to the responder, besides the summary of the rest."""

MAX_SENDER_RATE = 1000.0
"""Meta's highest throughput tier, in messages per second; no configuration may exceed it."""

GATEWAY_REQUIRED = (
    "access_token",
    "phone_number_id",
    "business_account_id",
    "webhook_verify_token",
    "webhook_secret",
    "redis_url",
)
"""Fields the web and the workers cannot run without."""

SECRET_VARIABLE = re.compile(
    r"(TOKEN|SECRET|SECRET_ACCESS_KEY|PASSWORD|API_KEYS?|BASIC_AUTH|WEBHOOK_URL|_DSN)$",
    re.IGNORECASE,
)
"""Environment variables whose values are secrets and must never appear in a log, whether this
project reads them or a library does."""

_NUMERIC_ID = re.compile(r"[0-9]{5,20}")
_VERSION = re.compile(r"v[0-9]+\.[0-9]+")
_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces: what Meta issues


def parse_rates(spec: str) -> dict[str, float]:
    """Per-number rates from ``"106540352242922=200,106540352242923=1000"``.

    Raises ValueError naming the entry that is malformed or above Meta's highest tier.
    """
    rates: dict[str, float] = {}
    items = filter(None, (part.strip() for part in spec.split(",")))
    for position, item in enumerate(items, start=1):
        number, sep, value = item.partition("=")
        try:
            rate = float(value)
        except ValueError:
            rate = -1.0
        if not sep or not number.strip().isdigit() or not 0 < rate <= MAX_SENDER_RATE:
            raise ValueError(
                f"SEND_RATE_LIMITS entry {position} must be <phone_number_id>=<messages per second>, "
                f"at most {MAX_SENDER_RATE:g}"
            )
        rates[number.strip()] = rate
    return rates


SEND_LANES = ("high", "normal", "bulk")
"""The send lanes, most urgent first."""


def parse_lane_caps(spec: str) -> dict[str, int]:
    """Per-lane caps from ``"bulk=100000,normal=500000"``; a lane not named (or 0) has none.

    Raises ValueError naming the entry that is malformed.
    """
    caps: dict[str, int] = {}
    items = filter(None, (part.strip() for part in spec.split(",")))
    for position, item in enumerate(items, start=1):
        lane, sep, value = (part.strip() for part in item.partition("="))
        if not sep or lane not in SEND_LANES or not value.isdigit():
            raise ValueError(
                f"SEND_QUEUE_CAPS entry {position} must be <lane>=<messages>, the lane one of "
                + ", ".join(SEND_LANES)
            )
        if int(value):
            caps[lane] = int(value)
    return caps


def _env(name: str, default: Any, doc: str, secret: bool = False, **constraints: Any) -> Any:
    """A field read from the environment variable ``name``; ``doc`` is its one-line reason."""
    return Field(
        default,
        validation_alias=name,
        description=doc,
        repr=not secret,
        json_schema_extra={"secret": secret},
        **constraints,
    )


_given_only: ContextVar[bool] = ContextVar("settings_given_only", default=False)
"""Set while :func:`load_settings` builds settings from a mapping it was handed."""


class Settings(BaseSettings):
    """The gateway's validated configuration: one field per environment variable."""

    model_config = SettingsConfigDict(
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        env_ignore_empty=True,
        str_strip_whitespace=True,
        populate_by_name=True,
        case_sensitive=True,
    )

    # --- Meta's Cloud API ------------------------------------------------------------------
    access_token: str = _env(
        "WHATSAPP_ACCESS_TOKEN", "", "System-user token of the sending number.", secret=True
    )
    phone_number_id: str = _env(
        "WHATSAPP_PHONE_NUMBER_ID", "", "Meta's id of the default sending number."
    )
    business_account_id: str = _env(
        "WHATSAPP_BUSINESS_ACCOUNT_ID", "", "The WhatsApp Business Account id (WABA)."
    )
    webhook_verify_token: str = _env(
        "WHATSAPP_WEBHOOK_VERIFY_TOKEN",
        "",
        "Echoed back to Meta's subscription handshake (GET /webhook).",
        secret=True,
    )
    webhook_secret: str = _env(
        "WHATSAPP_WEBHOOK_SECRET",
        "",
        "App secret that signs webhooks (X-Hub-Signature-256).",
        secret=True,
    )
    webhook_previous_secret: str = _env(
        "WHATSAPP_WEBHOOK_PREVIOUS_SECRET",
        "",
        "The app secret before a rotation, accepted until it is removed.",
        secret=True,
    )
    api_base_url: str = _env(
        "WHATSAPP_API_BASE_URL", DEFAULT_API_BASE_URL, "Graph API origin (the simulator's in tests)."
    )
    api_version: str = _env(
        "WHATSAPP_API_VERSION", DEFAULT_API_VERSION, "Graph API version, such as v23.0."
    )
    webhook_max_age: int = _env(
        "WEBHOOK_MAX_AGE_SECONDS",
        0,
        "Seconds a trusted proxy's X-Webhook-Timestamp may lag; 0 disables the check "
        "(Meta sends no timestamp).",
        ge=0,
        le=999_999,
    )
    graph_read_timeout: float = _env(
        "GRAPH_READ_TIMEOUT",
        20.0,
        "Seconds to wait for Meta's answer; a send that hangs longer is retried as transient.",
        gt=0,
        le=120,
    )
    requests_ca_bundle: str = _env(
        "REQUESTS_CA_BUNDLE", "", "CA bundle for HTTPS to the Graph API (as requests reads it)."
    )
    curl_ca_bundle: str = _env(
        "CURL_CA_BUNDLE", "", "CA bundle, when REQUESTS_CA_BUNDLE is not set."
    )

    # --- Redis and Celery -----------------------------------------------------------------
    redis_url: str = _env(
        "REDIS_URL",
        "",
        "The Redis that is broker and store (redis://, rediss://, unix://, or "
        "sentinel://host:port;sentinel://host:port for a Sentinel-managed master).",
    )
    redis_sentinel_master: str = _env(
        "REDIS_SENTINEL_MASTER",
        "",
        "The master name the Sentinels of a sentinel:// REDIS_URL watch.",
    )
    redis_password: str = _env(
        "REDIS_PASSWORD",
        "",
        "Redis's password (requirepass) when the URL carries none: Sentinel URLs never do.",
        secret=True,
    )
    redis_sentinel_password: str = _env(
        "REDIS_SENTINEL_PASSWORD",
        "",
        "The Sentinels' own password (their requirepass), if they have one.",
        secret=True,
    )
    redis_min_replicas: int = _env(
        "REDIS_MIN_REPLICAS",
        0,
        "Replicas that must hold a webhook or send before it is acknowledged (WAIT); 0: none.",
        ge=0,
        le=16,
    )
    redis_wait_timeout: float = _env(
        "REDIS_WAIT_TIMEOUT",
        1.0,
        "Seconds to wait for those replicas before answering 503 (below the 2 s socket timeout).",
        gt=0,
        le=1.5,
    )
    visibility_timeout: float = _env(
        "CELERY_VISIBILITY_TIMEOUT",
        300.0,
        "Seconds before Redis hands an unacknowledged task to another worker.",
        ge=10,
        le=86_400,
    )
    task_soft_time_limit: float = _env(
        "CELERY_TASK_SOFT_TIME_LIMIT",
        60.0,
        "Seconds a task may run before it is asked to stop (capped inside the visibility "
        "timeout).",
        gt=0,
    )
    task_time_limit: float = _env(
        "CELERY_TASK_TIME_LIMIT",
        90.0,
        "Seconds before a task's process is killed (capped inside the visibility timeout).",
        gt=0,
    )
    max_tasks_per_child: int = _env(
        "CELERY_MAX_TASKS_PER_CHILD",
        10_000,
        "Tasks a worker child runs before it is replaced, bounding a slow leak.",
        ge=1,
    )
    task_events_lease: float = _env(
        "CELERY_TASK_EVENTS_LEASE",
        60.0,
        "Seconds a worker keeps sending task events after a monitor last asked for them.",
        ge=1,
        le=3600,
    )
    task_max_redeliveries: int = _env(
        "TASK_MAX_REDELIVERIES",
        3,
        "Runs of one task that may end with their worker dead before it counts as poison.",
        ge=1,
        le=100,
    )

    # --- Sending --------------------------------------------------------------------------
    send_rate_limit: float = _env(
        "SEND_RATE_LIMIT",
        80.0,
        "Messages per second per sending number, unless SEND_RATE_LIMITS names it.",
        gt=0,
        le=MAX_SENDER_RATE,
    )
    send_rate_limits: Annotated[dict[str, float], NoDecode] = _env(
        "SEND_RATE_LIMITS",
        {},
        "Per-number rates: <phone_number_id>=<messages/s>, comma-separated.",
    )
    send_queue_caps: Annotated[dict[str, int], NoDecode] = _env(
        "SEND_QUEUE_CAPS",
        {"bulk": 100_000},
        "Messages a lane may hold per sending number before the API answers 429 queue_full.",
    )
    send_rate_burst_seconds: float = _env(
        "SEND_RATE_BURST_SECONDS",
        0.1,
        "A number's burst, in seconds of its rate (at least one message).",
        gt=0,
        le=60,
    )
    send_pair_interval: float = _env(
        "SEND_PAIR_INTERVAL",
        6.0,
        "Seconds between messages to one customer in the long run (Meta's pair rate limit); "
        "0 turns it off.",
        ge=0,
        le=3600,
    )
    send_pair_burst: int = _env(
        "SEND_PAIR_BURST",
        3,
        "Messages to one customer back to back before the pair interval applies.",
        ge=1,
        le=100,
    )
    send_retry_base_delay: float = _env(
        "SEND_RETRY_BASE_DELAY",
        2.0,
        "Seconds of the first retry's backoff ceiling; each further failure doubles it.",
        gt=0,
    )
    send_retry_max_delay: float = _env(
        "SEND_RETRY_MAX_DELAY",
        300.0,
        "The longest backoff (also capped by the visibility timeout).",
        gt=0,
    )
    send_max_attempts: int = _env(
        "SEND_MAX_ATTEMPTS",
        8,
        "Transient failures of one message before it is dead-lettered.",
        ge=1,
        le=1000,
    )
    send_max_throttled: int = _env(
        "SEND_MAX_THROTTLED",
        30,
        "Throttling answers for one message before it is dead-lettered.",
        ge=1,
        le=1000,
    )
    send_batch_size: int = _env(
        "SEND_BATCH_SIZE",
        50,
        "Messages per batch task on the normal and bulk lanes; 1 sends each on its own.",
        ge=1,
        le=1000,
    )
    message_retention_days: int = _env(
        "MESSAGE_RETENTION_DAYS",
        30,
        "Days an outbound message's record (and its wamid index) is kept; Meta's late "
        "statuses come within 30.",
        ge=1,
        le=365,
    )
    message_keep_body: bool = _env(
        "MESSAGE_KEEP_BODY",
        False,
        "Keep a message's body once it is delivered; by default only its status, ids and "
        "history stay.",
    )
    send_batch_concurrency: int = _env(
        "SEND_BATCH_CONCURRENCY",
        10,
        "Graph calls a batch task keeps in flight: what holds a number at its rate under latency.",
        ge=1,
        le=64,
    )
    window_fallback_template: str = _env(
        "WINDOW_FALLBACK_TEMPLATE",
        "",
        "Template (<name>[:<language>]) sent instead of free-form text outside the "
        "24-hour window; empty: such sends are refused.",
    )

    opt_out_keywords: str = _env(
        "OPT_OUT_KEYWORDS",
        "STOP,BAJA,PARAR,CANCELAR,UNSUBSCRIBE",
        "Whole messages (comma-separated; accents and case ignored) that opt out of marketing.",
    )
    opt_out_confirmation: str = _env(
        "OPT_OUT_CONFIRMATION",
        "Listo: no te enviaremos más mensajes promocionales. / Done: no more promotional "
        "messages from us.",
        "The one reply confirming an opt-out by keyword.",
        min_length=1,
        max_length=4096,
    )

    # --- Conversations --------------------------------------------------------------------
    responder_backend: Literal["rules", "openai", "http"] = _env(
        "RESPONDER_BACKEND", "rules", "Who answers: rules (offline), openai or http (an agent)."
    )
    responder_timeout: float = _env(
        "RESPONDER_TIMEOUT",
        10.0,
        "Seconds a responder may take before the customer gets the fallback reply.",
        ge=0.1,
        le=45.0,
    )
    responder_fallback_reply: str = _env(
        "RESPONDER_FALLBACK_REPLY",
        "",
        "Reply when the responder fails; empty: a built-in apology in the customer's language.",
    )
    context_messages: int = _env(
        "CONTEXT_MAX_MESSAGES",
        DEFAULT_CONTEXT_MESSAGES,
        "Messages of context handed to the responder, besides the summary of the rest.",
        ge=1,
        le=50,
    )
    ai_cache_ttl: int = _env(
        "AI_CACHE_TTL", 1800, "Seconds an AI reply is reused; 0 turns the cache off.", ge=0,
        le=7 * 24 * 3600,
    )
    openai_base_url: str = _env(
        "OPENAI_BASE_URL", "https://api.openai.com/v1", "OpenAI-compatible API base URL."
    )
    openai_model: str = _env("OPENAI_MODEL", "gpt-4o-mini", "Model of the openai backend.")
    openai_api_key: str = _env(
        "OPENAI_API_KEY", "", "Key of the openai backend (required by it).", secret=True
    )
    openai_system_prompt: str = _env(
        "OPENAI_SYSTEM_PROMPT", "", "System prompt; empty: a built-in shop assistant prompt."
    )
    agent_webhook_url: str = _env(
        "AGENT_WEBHOOK_URL", "", "The agent the http backend POSTs each turn to (required by it)."
    )
    agent_webhook_token: str = _env(
        "AGENT_WEBHOOK_TOKEN", "", "Bearer token sent to the agent webhook.", secret=True
    )
    rules_knowledge_file: str = _env(
        "RULES_KNOWLEDGE_FILE",
        "",
        "JSON file describing the business for the rules backend; empty: the sample shop.",
    )
    media_dir: str = _env(
        "MEDIA_DIR", ".wa-gateway/media", "Where inbound media is stored after validation."
    )
    media_store: Literal["local", "s3"] = _env(
        "MEDIA_STORE",
        "local",
        "Where inbound media is kept: local (MEDIA_DIR, one host) or s3 (a bucket every host "
        "reads).",
    )
    media_s3_bucket: str = _env("MEDIA_S3_BUCKET", "", "The bucket of MEDIA_STORE=s3 (required by it).")
    media_s3_endpoint_url: str = _env(
        "MEDIA_S3_ENDPOINT_URL", "", "An S3-compatible server's URL; empty: AWS S3 itself."
    )
    media_s3_region: str = _env("MEDIA_S3_REGION", "", "The bucket's region; empty: boto3's default.")
    media_s3_access_key_id: str = _env(
        "MEDIA_S3_ACCESS_KEY_ID", "", "Access key id; empty: boto3's credential chain.", secret=True
    )
    media_s3_secret_access_key: str = _env(
        "MEDIA_S3_SECRET_ACCESS_KEY", "", "Secret access key, with the id above.", secret=True
    )
    media_retention_days: float = _env(
        "MEDIA_RETENTION_DAYS",
        30.0,
        "Days inbound media is kept before the daily sweep deletes it; 0 keeps it forever.",
        ge=0,
    )
    media_max_bytes: int = _env(
        "MEDIA_MAX_BYTES",
        16 * 1024 * 1024,
        "Largest media file downloaded (16 MiB: Meta's limit for audio and video).",
        ge=1024,
        le=100 * 1024 * 1024,
    )
    active_conversation_window: float = _env(
        "ACTIVE_CONVERSATION_WINDOW",
        24 * 3600.0,
        "Seconds since the customer's last message during which a conversation counts as "
        "active (Meta's 24-hour window).",
        gt=0,
    )

    # --- Security -------------------------------------------------------------------------
    encryption_keys: str = _env(
        "GATEWAY_ENCRYPTION_KEYS",
        "",
        "Fernet keys, comma-separated, newest first, that encrypt stored tokens.",
        secret=True,
    )
    api_keys: str = _env(
        "GATEWAY_API_KEYS",
        "",
        "API keys of /v1 given at start, comma-separated (more with wa-gateway apikeys).",
        secret=True,
    )
    metrics_bearer_token: str = _env(
        "METRICS_BEARER_TOKEN", "", "Bearer token /metrics requires when set.", secret=True
    )
    metrics_port: int = _env(
        "METRICS_PORT",
        0,
        "Port the web process serves /metrics on, and only there, beside its own; 0: on the "
        "web port (keeps /metrics off a port the internet reaches).",
        ge=0,
        le=65535,
    )
    sandbox: bool = _env(
        "GATEWAY_SANDBOX",
        False,
        "Set by wa-gateway run on its embedded simulator: lets Flower run without a password.",
    )

    # --- Operations -----------------------------------------------------------------------
    log_format: Literal["json", "text"] = _env(
        "LOG_FORMAT", "json", "json (one object a line, for pipelines) or text (for a person)."
    )
    prometheus_multiproc_dir: str = _env(
        "PROMETHEUS_MULTIPROC_DIR",
        "",
        "Directory the processes of a host share metrics through; must be in the real "
        "environment, since prometheus-client reads it too.",
    )
    worker_heartbeat_interval: float = _env(
        "WORKER_HEARTBEAT_INTERVAL", 10.0, "Seconds between a worker's heartbeats.", gt=0
    )
    alert_check_interval: float = _env(
        "ALERT_CHECK_INTERVAL", 30.0, "Seconds between two runs of the alert checks.", ge=1
    )
    alert_window_seconds: float = _env(
        "ALERT_WINDOW_SECONDS",
        300.0,
        "The window alert checks and rate gauges look back over.",
        ge=10,
        le=OPS_WINDOW_LIMIT,
    )
    alert_send_error_rate: float = _env(
        "ALERT_SEND_ERROR_RATE", 0.05, "Share of failed sends that fires send_error_rate.", ge=0
    )
    alert_min_send_attempts: int = _env(
        "ALERT_MIN_SEND_ATTEMPTS", 20, "Sends in the window before the error rate counts.", ge=0
    )
    alert_processing_seconds: float = _env(
        "ALERT_PROCESSING_SECONDS", 5.0, "Mean webhook processing time that fires.", ge=0
    )
    alert_ai_response_seconds: float = _env(
        "ALERT_AI_RESPONSE_SECONDS", 5.0, "Mean responder time that fires.", ge=0
    )
    alert_min_duration_samples: int = _env(
        "ALERT_MIN_DURATION_SAMPLES", 5, "Samples in the window before a mean counts.", ge=0
    )
    alert_queue_size: int = _env(
        "ALERT_QUEUE_SIZE",
        1000,
        "Messages waiting in one queue (a send lane: of one number) that fire queue_backlog.",
        ge=0,
    )
    alert_signature_failures: int = _env(
        "ALERT_SIGNATURE_FAILURES", 10, "Bad webhook signatures in the window that fire.", ge=0
    )
    alert_dead_letter_growth: int = _env(
        "ALERT_DEAD_LETTER_GROWTH", 1, "New dead letters in the window that fire.", ge=0
    )
    alert_heartbeat_timeout: float = _env(
        "ALERT_HEARTBEAT_TIMEOUT", 90.0, "Seconds without a worker heartbeat that fire.", ge=0
    )
    alert_cooldown_seconds: float = _env(
        "ALERT_COOLDOWN_SECONDS", 900.0, "Seconds before a firing alert notifies again.", ge=0
    )
    alert_worker_queues: str = _env(
        "ALERT_WORKER_QUEUES",
        "",
        "Queues, comma-separated, that must each have a live worker; empty: every queue.",
    )
    alert_handler_timeout: float = _env(
        "ALERT_HANDLER_TIMEOUT",
        10.0,
        "Seconds a handler may take to deliver one notification.",
        gt=0,
        le=120,
    )
    alert_slack_webhook_url: str = _env(
        "ALERT_SLACK_WEBHOOK_URL", "", "Slack incoming webhook for alerts.", secret=True
    )
    alert_webhook_url: str = _env(
        "ALERT_WEBHOOK_URL", "", "Generic webhook alerts are POSTed to.", secret=True
    )
    alert_webhook_secret: str = _env(
        "ALERT_WEBHOOK_SECRET",
        "",
        "Signs generic webhook alerts (X-WA-Gateway-Signature).",
        secret=True,
    )
    alert_email_to: str = _env("ALERT_EMAIL_TO", "", "Alert e-mail recipients, comma-separated.")
    alert_email_from: str = _env("ALERT_EMAIL_FROM", "", "Sender of alert e-mail.")
    alert_smtp_host: str = _env("ALERT_SMTP_HOST", "", "SMTP server (required by e-mail).")
    alert_smtp_port: int = _env("ALERT_SMTP_PORT", 587, "SMTP port.", ge=1, le=65535)
    alert_smtp_user: str = _env("ALERT_SMTP_USER", "", "SMTP user name.")
    alert_smtp_password: str = _env("ALERT_SMTP_PASSWORD", "", "SMTP password.", secret=True)
    alert_smtp_security: Literal["starttls", "ssl", "none"] = _env(
        "ALERT_SMTP_SECURITY", "starttls", "starttls, ssl or none."
    )
    alert_deployment_name: str = _env(
        "ALERT_DEPLOYMENT_NAME", "", "How notifications name this deployment; empty: host name."
    )

    # --- Command line ---------------------------------------------------------------------
    event_allow_private_urls: bool = _env(
        "EVENT_ALLOW_PRIVATE_URLS",
        False,
        "Let event subscriptions point at loopback or private addresses (development, tests).",
    )
    event_max_attempts: int = _env(
        "EVENT_MAX_ATTEMPTS", 8, "Delivery attempts of one event before it is dead-lettered.", ge=1
    )
    event_retry_base_delay: float = _env(
        "EVENT_RETRY_BASE_DELAY", 2.0, "Event delivery backoff base, seconds (full jitter).", gt=0
    )
    event_timeout: float = _env(
        "EVENT_TIMEOUT", 10.0, "Seconds a subscriber may take to answer one event.", gt=0, le=60
    )
    simulator_port: int = _env(
        "SIMULATOR_PORT", 8025, "Port of wa-gateway simulator.", ge=1, le=65535
    )
    simulator_webhook_url: str = _env(
        "SIMULATOR_WEBHOOK_URL", "", "Where the simulator delivers its webhooks."
    )
    simulator_faults: str = _env("SIMULATOR_FAULTS", "", "Simulator faults, as JSON.")
    simulator_latency_ms: float = _env(
        "SIMULATOR_LATENCY_MS",
        150.0,
        "Median delay of the simulator's sends and media calls, as Meta's; 0: answer at once.",
        ge=0,
    )
    simulator_latency_p99_ms: float = _env(
        "SIMULATOR_LATENCY_P99_MS",
        700.0,
        "99th percentile of that delay: the tail of a lognormal model (docs/SIMULATOR.md).",
        ge=0,
    )
    simulator_not_on_whatsapp: str = _env(
        "SIMULATOR_NOT_ON_WHATSAPP",
        "",
        "Phone numbers, comma-separated, the simulator treats as not on WhatsApp.",
    )
    host: str = _env(
        "HOST",
        "127.0.0.1",
        "Address every listener of wa-gateway run binds (web, Flower, simulator, Redis); the "
        "Procfile's web alone binds 0.0.0.0 when HOST is unset, for a platform's router.",
    )
    flower_address: str = _env("FLOWER_ADDRESS", "127.0.0.1", "Address Flower listens on.")
    flower_port: int = _env("FLOWER_PORT", 5555, "Port Flower listens on.", ge=1, le=65535)
    flower_basic_auth: str = _env(
        "FLOWER_BASIC_AUTH", "", "user:password pairs Flower requires, comma-separated.",
        secret=True,
    )

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        """The environment over ``.env``; only the values given, when a caller names them all."""
        if _given_only.get():
            return (init_settings,)
        return (init_settings, env_settings, dotenv_settings)

    # --- Validation -----------------------------------------------------------------------
    @field_validator("phone_number_id", "business_account_id")
    @classmethod
    def _numeric_id(cls, value: str) -> str:
        if value and not _NUMERIC_ID.fullmatch(value):
            raise ValueError("must be Meta's numeric id (5 to 20 digits)")
        return value

    @field_validator(
        "access_token", "webhook_verify_token", "webhook_secret", "webhook_previous_secret"
    )
    @classmethod
    def _credential(cls, value: str) -> str:
        if value and not _TOKEN.fullmatch(value):
            raise ValueError("must be printable ASCII without spaces")
        if value and len(value) < 8:
            raise ValueError("is too short to be a real credential")
        return value

    @field_validator("api_base_url")
    @classmethod
    def _origin(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise ValueError(f"must be an http(s) origin such as {DEFAULT_API_BASE_URL}")
        return value.rstrip("/")

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not _VERSION.fullmatch(value):
            raise ValueError("must look like v23.0")
        return value

    @field_validator("host")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if value != "localhost":
                raise ValueError("must be an IP address or localhost") from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str) -> str:
        if value.startswith("sentinel://"):
            for part in value.split(";"):
                parts = urlsplit(part)
                if parts.scheme != "sentinel" or not parts.hostname:
                    raise ValueError("each Sentinel must be sentinel://host:port, joined by ;")
                if parts.password or parts.username:
                    raise ValueError("a sentinel:// URL carries no password (REDIS_PASSWORD)")
                parts.port  # noqa: B018 - raises ValueError on a port out of range
        elif value and urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must be a redis://, rediss://, unix:// or sentinel:// URL")
        return value

    @field_validator(
        "openai_base_url", "agent_webhook_url", "simulator_webhook_url", "alert_webhook_url",
        "alert_slack_webhook_url",
    )
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if value and (parts.scheme not in ("http", "https") or not parts.netloc):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/") if value else value

    @field_validator("send_rate_limits", mode="before")
    @classmethod
    def _rates(cls, value: Any) -> Any:
        return parse_rates(value) if isinstance(value, str) else value

    @field_validator("send_queue_caps", mode="before")
    @classmethod
    def _caps(cls, value: Any) -> Any:
        return parse_lane_caps(value) if isinstance(value, str) else value

    @field_validator("window_fallback_template")
    @classmethod
    def _template(cls, value: str) -> str:
        name, _, _language = value.partition(":")
        if value and not name.strip():
            raise ValueError("must be <template name>[:<language code>]")
        return value

    @field_validator("rules_knowledge_file")
    @classmethod
    def _readable(cls, value: str) -> str:
        if value and not os.path.isfile(value):
            raise ValueError("does not name a readable file")
        return value

    @field_validator("responder_backend", "media_store", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _backend_needs(self) -> Settings:
        if self.responder_backend == "openai" and not self.openai_api_key:
            raise ValueError("OPENAI_API_KEY is missing (RESPONDER_BACKEND=openai)")
        if self.responder_backend == "http" and not self.agent_webhook_url:
            raise ValueError("AGENT_WEBHOOK_URL is missing (RESPONDER_BACKEND=http)")
        if self.media_store == "s3" and not self.media_s3_bucket:
            raise ValueError("MEDIA_S3_BUCKET is missing (MEDIA_STORE=s3)")
        if bool(self.media_s3_access_key_id) != bool(self.media_s3_secret_access_key):
            raise ValueError("MEDIA_S3_ACCESS_KEY_ID and MEDIA_S3_SECRET_ACCESS_KEY go together")
        if self.alert_email_to and not self.alert_smtp_host:
            raise ValueError("ALERT_EMAIL_TO is set but ALERT_SMTP_HOST is missing")
        if self.redis_url.startswith("sentinel://") and not self.redis_sentinel_master:
            raise ValueError("REDIS_SENTINEL_MASTER is missing (REDIS_URL is sentinel://)")
        return self

    # --- Derived values -------------------------------------------------------------------
    @property
    def messages_url(self) -> str:
        """The Graph endpoint that sends messages from the configured number."""
        return f"{self.api_base_url}/{self.api_version}/{self.phone_number_id}/messages"

    @property
    def webhook_secrets(self) -> tuple[str, ...]:
        """App secrets whose signatures are accepted: the current one, then the previous one."""
        return tuple(s for s in (self.webhook_secret, self.webhook_previous_secret) if s)

    @property
    def ca_bundle(self) -> str | bool:
        """The CA bundle the environment names, in requests' order; True: the system's."""
        return self.requests_ca_bundle or self.curl_ca_bundle or True

    def missing_for_gateway(self) -> list[str]:
        """The variables the web and workers need that are not set."""
        return [f"{env_name(name)} is missing" for name in GATEWAY_REQUIRED if not getattr(self, name)]

    def require_gateway(self) -> Settings:
        """These settings, or :class:`ConfigError` naming every variable the gateway lacks."""
        problems = self.missing_for_gateway()
        if problems:
            raise ConfigError(problems)
        return self

    def masked(self) -> dict[str, str]:
        """Every setting by environment variable, secrets masked, for display."""
        shown = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if is_secret(name):
                value = mask_secret(value)
            elif name == "redis_url":
                value = mask_url_password(value)
            shown[env_name(name)] = str(value)
        return shown

    def __repr__(self) -> str:  # pydantic's repr leaves secrets out; this masks the URL too
        return f"Settings({self.masked()!r})"

    __str__ = __repr__


_ENV_NAMES = frozenset(str(f.validation_alias) for f in Settings.model_fields.values())


def env_name(field: str) -> str:
    """The environment variable of a settings field."""
    return str(Settings.model_fields[field].validation_alias)


def is_secret(field: str) -> bool:
    """Whether a settings field holds a secret that is never shown."""
    extra = Settings.model_fields[field].json_schema_extra
    return bool(isinstance(extra, dict) and extra.get("secret"))


def mask_secret(value: str) -> str:
    """Show that a secret is set, and its length, but none of its characters."""
    return f"<set, {len(value)} chars>" if value else "<not set>"


def mask_url_password(url: str) -> str:
    """Replace the password of a URL such as ``redis://:pw@host/0`` with ``***``."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _problems(exc: ValidationError) -> list[str]:
    """The validation errors as messages that name each variable and never show its value."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        message = str(error["msg"])
        ours = message.startswith("Value error, ")  # a validator's own words follow the name
        message = message.removeprefix("Value error, ")
        if error["loc"]:
            name = str(error["loc"][0])
            if name in Settings.model_fields:
                name = env_name(name)
            if message.startswith(name):
                problems.append(message)
            elif ours:
                problems.append(f"{name} {message}")
            else:
                problems.append(f"{name}: {message[0].lower()}{message[1:]}")
        else:  # a rule across fields: its message names the variables itself
            problems.append(message)
    return problems


def load_settings(
    environ: Mapping[str, str] | None = None,
    env_file: str | None = ENV_FILE,
    require_gateway: bool = True,
) -> Settings:
    """Build :class:`Settings` from ``environ`` (default: the process environment) over an
    optional ``.env`` file. Raises :class:`ConfigError` naming every malformed variable and,
    with ``require_gateway``, every missing one the web and workers need."""
    try:
        if environ is None:
            settings = Settings(_env_file=env_file)  # type: ignore[call-arg]
        else:
            given = {**_env_file_values(env_file), **environ}
            token = _given_only.set(True)
            try:
                settings = Settings(**{k: v for k, v in given.items() if k in _ENV_NAMES and v})
            finally:
                _given_only.reset(token)
    except ValidationError as exc:
        problems = _problems(exc)
        if require_gateway:  # every problem at once: the missing ones too
            given = {**_env_file_values(env_file), **(os.environ if environ is None else environ)}
            problems += [
                f"{env_name(name)} is missing"
                for name in GATEWAY_REQUIRED
                if not given.get(env_name(name), "").strip()
            ]
        raise ConfigError(problems) from None
    return settings.require_gateway() if require_gateway else settings


def _env_file_values(env_file: str | None) -> dict[str, str]:
    if not env_file or not os.path.exists(env_file):
        return {}
    return {k: v for k, v in dotenv_values(env_file).items() if v}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once. Presence of the gateway's credentials is checked by
    the processes that need them (:meth:`Settings.require_gateway`)."""
    return load_settings(require_gateway=False)


def secret_values(
    settings: Settings | None = None, environ: Mapping[str, str] | None = None
) -> set[str]:
    """Every secret value a process knows (default: this one's): its settings' and any the
    environment holds under a secret-looking name (a library's password, a DSN), for the log
    redactor."""
    found: set[str] = set()
    settings = settings or get_settings()
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if is_secret(name) and value:
            found.add(value)
    for name, value in (os.environ if environ is None else environ).items():
        if value and SECRET_VARIABLE.search(name):
            found.add(value)
        elif value and "://" in value and "@" in value:
            password = urlsplit(value).password
            if password:
                found.add(password)
    if settings.redis_url and "@" in settings.redis_url:
        found.add(urlsplit(settings.redis_url).password or "")
    for value in list(found):  # lists: API keys, user:password pairs
        for part in value.split(","):
            found.add(part.strip())
            found.add(part.partition(":")[2].strip())
    found.discard("")
    return found
