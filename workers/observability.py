"""Per-process observability for Celery processes: JSON logs, correlation ids, metrics
bookkeeping and worker heartbeats, wired through Celery's signals."""

from __future__ import annotations

import logging
import os
import threading

from celery.signals import (
    after_task_publish,
    setup_logging,
    task_postrun,
    task_prerun,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)
from redis.exceptions import RedisError

from app.config import get_settings
from app.db import get_redis
from app.ops import logging as ops_logging
from app.ops import metrics
from app.ops.heartbeats import HEARTBEAT_INTERVAL, WorkerHeartbeats

log = logging.getLogger(__name__)

_heartbeat_stop = threading.Event()


@setup_logging.connect
def json_logs(loglevel: int | str | None = None, **_: object) -> None:
    """Replace Celery's log set-up with the gateway's (JSON, redacted, with correlation ids)."""
    ops_logging.configure_logging(loglevel or "INFO")


@task_prerun.connect
def bind_task_ids(task_id: str | None = None, task=None, args=None, **_: object) -> None:
    """Every line a task logs carries its id, its chain's root id, and the message it concerns."""
    ops_logging.clear()
    name = getattr(task, "name", None)
    ids = {"task_id": task_id, "task": name, "root_id": getattr(task.request, "root_id", None)}
    if name and name.startswith("outbound.") and args and isinstance(args[0], str):
        ids["message_id"] = args[0]  # send tasks take the gateway's message id first
    ops_logging.bind(**ids)
    metrics.TASKS_IN_PROGRESS.labels(task=metrics.task_label(name)).inc()


@task_postrun.connect
def unbind_task_ids(task=None, **_: object) -> None:
    metrics.TASKS_IN_PROGRESS.labels(task=metrics.task_label(getattr(task, "name", None))).dec()
    ops_logging.clear()


@after_task_publish.connect
def log_published(
    sender: str | None = None, headers: dict | None = None, routing_key=None, **_: object
) -> None:
    """One line per queued task, so a webhook's task id can be followed from the web process."""
    headers = headers or {}
    log.info(
        "queued %s",
        sender,
        extra={
            "queued_task_id": headers.get("id"),
            "queue": routing_key,
            "queued_root_id": headers.get("root_id"),
        },
    )


@worker_process_shutdown.connect
def forget_process_gauges(pid: int | None = None, **_: object) -> None:
    """A pool child is exiting: its live gauges must stop counting."""
    metrics.mark_process_dead(pid or os.getpid())


@worker_ready.connect
def start_heartbeat(sender=None, **_: object) -> None:
    """Beat in Redis every HEARTBEAT_INTERVAL seconds for the queues this worker consumes."""
    hostname = sender.hostname
    queues = sorted(sender.app.amqp.queues.consume_from)
    heartbeats = WorkerHeartbeats(get_redis(get_settings().redis_url))
    _heartbeat_stop.clear()

    def run() -> None:
        while True:
            try:
                heartbeats.beat(hostname, queues)
            except (RedisError, OSError) as exc:
                log.warning("worker heartbeat not recorded: %s", type(exc).__name__)
            if _heartbeat_stop.wait(HEARTBEAT_INTERVAL):
                return

    threading.Thread(target=run, name="wa-heartbeat", daemon=True).start()


@worker_shutdown.connect
def stop_heartbeat(sender=None, **_: object) -> None:
    """A clean shutdown removes the worker's heartbeat: it is gone, not dead."""
    _heartbeat_stop.set()
    try:
        WorkerHeartbeats(get_redis(get_settings().redis_url)).forget(sender.hostname)
    except (RedisError, OSError):
        pass  # the entry ages out; the heartbeat alert will name the queue if nobody replaces it
