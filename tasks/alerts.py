"""The alert checks, run on the beat schedule on the ``alerts`` queue, and the notifications of
handoffs, queued when one starts."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from celery import shared_task

import celeryconfig
from app.config import get_settings
from app.db import get_redis
from app.ops.alerts import (
    AlertEvaluator,
    AlertHandler,
    AlertHistory,
    AlertThresholds,
    handlers_from_settings,
    handoff_notice,
    notify,
)
from app.ops.queues import KOMBU_PRIORITY_STEPS
from app.ops.state import read_state

log = logging.getLogger(__name__)

QUEUES = [queue.name for queue in celeryconfig.task_queues]
PRIORITY_STEPS = celeryconfig.broker_transport_options.get("priority_steps", KOMBU_PRIORITY_STEPS)


@lru_cache(maxsize=1)
def _handlers() -> tuple[AlertHandler, ...]:
    return tuple(handlers_from_settings())  # one HTTP session per handler per process


@shared_task(name="alerts.evaluate", ignore_result=True)
def evaluate_alerts() -> dict[str, Any]:
    """Read the deployment's state, run every check and notify what changed."""
    redis_client = get_redis(get_settings().redis_url)
    thresholds = AlertThresholds.from_settings()
    state = read_state(
        redis_client,
        QUEUES,
        priority_steps=PRIORITY_STEPS,
        window_seconds=thresholds.window_seconds,
    )
    events = AlertEvaluator(redis_client, thresholds, _handlers()).evaluate(state)
    return {"sent": [f"{event.name}:{event.status}" for event in events]}


@shared_task(name="alerts.notify_handoff", ignore_result=True)
def notify_handoff(handoff: dict[str, Any]) -> list[str]:
    """Tell the alert channels (Slack, e-mail, webhook) that a conversation needs a person; the
    notification joins the alert history. Returns the channels that took it."""
    event = handoff_notice(handoff)
    notify(_handlers(), event)
    AlertHistory(get_redis(get_settings().redis_url)).add(event)
    log.info("handoff notification %s delivered by %s", event.id, event.delivered or "no channel")
    return event.delivered
