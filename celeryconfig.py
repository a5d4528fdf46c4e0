"""Celery settings, each with its reason. Settings only: the one Celery app lives in ``workers``.

Values that differ between deployments come from the gateway's one settings object
(:func:`app.config.get_settings`: the environment and ``.env``), so every process type of the
Procfile is configured the same way.
"""

from __future__ import annotations

from kombu import Exchange, Queue

from app.config import ConfigError, get_settings
from app.db import broker_url as _broker_url
from app.db import sentinel_options as _sentinel_options

_settings = get_settings()

# --- Broker -----------------------------------------------------------------------------------

if not _settings.redis_url:
    # Without it Celery would fall back to amqp://localhost and, where RabbitMQ runs, use it.
    raise ConfigError(["REDIS_URL is missing"])
broker_url = _broker_url(_settings.redis_url, _settings.redis_password)
# Outcomes live in the gateway's own message store; a result backend would only fill Redis.
result_backend = None
task_ignore_result = True

VISIBILITY_TIMEOUT = _settings.visibility_timeout
"""Seconds before Redis hands an unacknowledged task to another worker.

With late acknowledgement this is how the task of a killed worker, or of a worker cut off from
Redis, comes back: it bounds how late such a task runs (Celery's default, an hour, is too long
for a customer waiting for a reply). Every task, retry countdown and deferral must finish well
inside it, or Redis re-delivers a task that is still legitimately waiting: see MAX_DEFERRAL
below, which is derived from it, and the task time limits, which are far below it.
"""

MAX_DEFERRAL = VISIBILITY_TIMEOUT / 2
"""The longest countdown any retry or deferral may ask for; half the visibility timeout, so the
broker never mistakes a scheduled task for a lost one."""

broker_transport_options: dict = {
    "visibility_timeout": VISIBILITY_TIMEOUT,
    # Always drain the first queue a worker lists before the next: a worker started with
    # -Q send.high,send.normal,send.bulk serves urgent replies first instead of round-robin.
    "queue_order_strategy": "priority",
    # Fail fast when Redis is away, so the webhook answers 503 and Meta redelivers later.
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
    "retry_on_timeout": True,
    "health_check_interval": 15,
    # How often each worker looks for tasks whose worker died (unacknowledged past the visibility
    # timeout) and puts them back; by default only every 100 s, far behind a short timeout.
    "unacked_restore_interval": max(1.0, min(60.0, VISIBILITY_TIMEOUT / 10)),
    "unacked_restore_throttle": 1,
}
if broker_url.startswith("sentinel://"):
    # kombu's Sentinel transport asks these Sentinels for the master on every (re)connection, so
    # workers and beat follow a failover; the URL itself carries no password (see app.config).
    # Ours follows the Sentinel with the newest view, as the gateway's own clients do.
    broker_transport = "workers.broker:SentinelTransport"
    broker_transport_options["master_name"] = _settings.redis_sentinel_master
    broker_transport_options["sentinel_kwargs"] = _sentinel_options(
        _settings.redis_sentinel_password
    )
broker_connection_timeout = 2
broker_connection_retry_on_startup = True
broker_connection_max_retries = None  # workers wait for Redis to come back, however long

# --- Serialisation: JSON only, never pickle ------------------------------------------------------

task_serializer = "json"
result_serializer = "json"
event_serializer = "json"
accept_content = ["json"]
result_accept_content = ["json"]

# --- Reliability ------------------------------------------------------------------------------

# Acknowledge after the task ran, so a worker killed mid-task leaves the message in Redis.
task_acks_late = True
# ... and when the child process dies (SIGKILL, OOM), requeue the task instead of acking it.
task_reject_on_worker_lost = True
# One reserved task per process: a long send never holds back tasks another process could run,
# and a crash puts back at most one task per process.
worker_prefetch_multiplier = 1
# Bound every task: a send that hangs past its HTTP timeouts is killed rather than holding a slot.
# Both stay inside MAX_DEFERRAL, so no running task can outlive the visibility timeout either.
task_soft_time_limit = min(_settings.task_soft_time_limit, MAX_DEFERRAL * 0.8)
task_time_limit = min(_settings.task_time_limit, MAX_DEFERRAL)
# Replace a child process after many tasks, so a slow leak cannot grow without bound.
worker_max_tasks_per_child = _settings.max_tasks_per_child
worker_cancel_long_running_tasks_on_connection_loss = False

# --- Queues and routes ------------------------------------------------------------------------

QUEUE_INBOUND = "inbound"
QUEUE_CONTEXT = "context"
QUEUE_SEND_HIGH = "send.high"
QUEUE_SEND_NORMAL = "send.normal"
QUEUE_SEND_BULK = "send.bulk"
QUEUE_ALERTS = "alerts"
QUEUE_EVENTS = "events"
"""Deliveries of events to the business's systems: a queue of its own, so a slow or failing
receiver never delays a reply, and its retries wait on nobody else's lane."""

SEND_QUEUES = {"high": QUEUE_SEND_HIGH, "normal": QUEUE_SEND_NORMAL, "bulk": QUEUE_SEND_BULK}
"""Priority lane name to queue. Separate queues, not message priorities, so that a backlog of
bulk messages can never delay a reply: the send pool drains them in this order."""

SEND_BATCHED_LANES = ("normal", "bulk")
"""Lanes whose messages, when the API takes several at once, go many to a task: a campaign then
costs the broker one task per batch instead of one per message. ``high`` stays one message per
task, so a reply never waits behind others in a batch."""

SEND_BATCH_SIZE = _settings.send_batch_size
"""Messages per batch task; 1 sends every message as a task of its own."""

SEND_BATCH_CONCURRENCY = _settings.send_batch_concurrency
"""Graph calls one batch task keeps in flight, each on a thread of the task, while the task itself
takes the locks and rate-limit tokens one message at a time: at 300 ms a call, 80 messages/s need
24 in flight, more than a pool has processes (docs/BENCHMARKS.md)."""

SEND_BATCH_TIME_BUDGET = task_soft_time_limit / 4
"""Seconds a batch task sends before handing the rest of its messages to a new batch task."""

STATUS_BATCH_SIZE = 100
"""Status webhooks ``inbound.apply_statuses`` takes from the lane at a time: what a worker killed
mid-batch applies again (harmlessly: a status never moves a message twice)."""

STATUS_BATCH_TIME_BUDGET = task_soft_time_limit / 4
"""Seconds one ``inbound.apply_statuses`` run applies before handing the lane to a new task."""

SEND_BATCH_MAX_WAIT = 1.0
"""Seconds a batch task waits in place for its rate-limit turn; a longer wait hands the rest on
as a new batch for that turn. Waiting in place keeps its calls in flight and its process busy
sending: a batch handed on for every turn spent its process waiting for its last calls instead."""

EXCHANGE_PREFIX = "wa."
"""Each queue is bound to an exchange of its own, ``wa.<queue>``, under its own routing key. A bare
``Queue(name)`` took the default queue's exchange and key, so all six then shared the binding
``inbound``/``inbound`` and a message sent (or restored) through it was copied into every queue.
The prefix keeps every new exchange apart from that old one, whose bindings outlive an upgrade in
Redis (``_kombu.binding.inbound``): nothing routes through it any more, so nobody must delete it."""

task_queues = [
    Queue(name, Exchange(EXCHANGE_PREFIX + name, type="direct"), routing_key=name)
    for name in (
        QUEUE_INBOUND,
        QUEUE_CONTEXT,
        QUEUE_SEND_HIGH,
        QUEUE_SEND_NORMAL,
        QUEUE_SEND_BULK,
        QUEUE_ALERTS,
        QUEUE_EVENTS,
    )
]
task_default_queue = QUEUE_INBOUND
task_create_missing_queues = False  # a typo in a route is an error, not a queue nobody consumes
task_routes = {
    "inbound.*": {"queue": QUEUE_INBOUND},
    "context.*": {"queue": QUEUE_CONTEXT},
    "outbound.*": {"queue": QUEUE_SEND_NORMAL},  # callers pick the lane with queue=SEND_QUEUES[...]
    "alerts.*": {"queue": QUEUE_ALERTS},
    "campaigns.*": {"queue": QUEUE_SEND_BULK},  # a campaign's tasks ride its own lane
    "events.*": {"queue": QUEUE_EVENTS},
}

# --- Monitoring -------------------------------------------------------------------------------

# Task events (what Flower shows of each task's life) are off until someone watches: Flower's
# --enable_events (on by default) asks every worker for them every few seconds, and
# `celery -A workers control enable_events` does once. Three publishes per task cost the inbound
# worker about a quarter of its CPU in a reply's round trip (docs/BENCHMARKS.md). A worker keeps
# sending them for TASK_EVENTS_LEASE seconds after it was last asked (workers/task_events.py), so a
# Flower stopped leaves none behind. No "sent" events: they cost a publish on the publishing side,
# and queue depth is a metric.
worker_send_task_events = False
TASK_EVENTS_LEASE = _settings.task_events_lease
task_send_sent_event = False

timezone = "UTC"
enable_utc = True

ALERT_CHECK_INTERVAL = _settings.alert_check_interval
"""Seconds between two runs of the alert checks."""

beat_schedule: dict = {
    "alert-checks": {
        "task": "alerts.evaluate",
        "schedule": ALERT_CHECK_INTERVAL,
        # A check that waited longer than one interval is stale: the next one replaces it.
        "options": {"queue": QUEUE_ALERTS, "expires": ALERT_CHECK_INTERVAL},
    },
}
# Beat keeps its schedule in memory: the default scheduler persists it with shelve, i.e. pickle.
# A beat may run on every host: only the one holding beat's lock in Redis sends due tasks.
beat_scheduler = "workers.beat:SingleBeatScheduler"

# The consumer records every message it refuses (pickle or any non-JSON content, unknown tasks).
worker_consumer = "workers.consumer:GatewayConsumer"

SEND_RECOVERY_INTERVAL = max(1.0, min(60.0, VISIBILITY_TIMEOUT / 10))
"""Seconds between sweeps for send tasks the broker lost (``outbound.recover_lost_sends``)."""

SEND_RECOVERY_GRACE = VISIBILITY_TIMEOUT * 1.5
"""How overdue a send must be before the sweep enqueues it again: past the broker's own
redelivery of a killed worker's tasks (the visibility timeout plus its restore sweeps)."""

TASK_RECOVERY_GRACE = SEND_RECOVERY_GRACE
"""How long a journaled task (a webhook's, or a conversation step's) may go unseen (neither
queued nor started) before the sweep queues it again, once its queue is empty: past the broker's
own redelivery, as for sends."""

beat_schedule["inbound.recover_lost_tasks"] = {
    "task": "inbound.recover_lost_tasks",
    "schedule": SEND_RECOVERY_INTERVAL,
    # On the queue of most of the tasks it looks for: it runs once that queue has drained, which
    # is when there is anything to find.
    "options": {"queue": QUEUE_INBOUND, "expires": SEND_RECOVERY_INTERVAL},
}

beat_schedule["outbound.recover_lost_sends"] = {
    "task": "outbound.recover_lost_sends",
    "schedule": SEND_RECOVERY_INTERVAL,
    # On the lane send workers drain first; a sweep nobody ran in time is dropped, not piled up.
    "options": {"queue": QUEUE_SEND_HIGH, "expires": SEND_RECOVERY_INTERVAL},
}

MEDIA_SWEEP_INTERVAL = 24 * 3600.0
"""Seconds between sweeps of media past ``MEDIA_RETENTION_DAYS``: retention is counted in days."""

beat_schedule["inbound.sweep_expired_media"] = {
    "task": "inbound.sweep_expired_media",
    "schedule": MEDIA_SWEEP_INTERVAL,
    # Deleting twice is harmless; a sweep that waited past the next one is dropped.
    "options": {"queue": QUEUE_INBOUND, "expires": MEDIA_SWEEP_INTERVAL},
}

CAMPAIGN_START_INTERVAL = 5.0
"""Seconds between two looks for scheduled campaigns due to start: the latest a campaign starts."""

beat_schedule["campaigns.start_due"] = {
    "task": "campaigns.start_due",
    "schedule": CAMPAIGN_START_INTERVAL,
    # Taking a campaign off the schedule is atomic: a late or repeated run starts nothing twice.
    "options": {"queue": QUEUE_SEND_BULK, "expires": CAMPAIGN_START_INTERVAL},
}
