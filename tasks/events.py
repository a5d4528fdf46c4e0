"""Event deliveries (the ``events`` queue): one task per event and subscription, retried with
exponential backoff and dead-lettered (direction ``event``, replayable) when its attempts run out.
The logic lives in :mod:`app.events`."""

from __future__ import annotations

import logging
import os
from typing import Any

import requests
from celery import shared_task

import celeryconfig
from app.config import get_settings
from app.credentials import load_cipher
from app.db import get_redis
from app.delivery import dead_letters as dl
from app.delivery.dead_letters import DeadLetterStore
from app.delivery.retry import RetryPolicy
from app.events.delivery import DeliveryFailed, deliver
from app.events.subscriptions import SubscriptionRefused, SubscriptionStore
from tasks.base import GatewayTask

log = logging.getLogger(__name__)

_sessions: dict[int, requests.Session] = {}


def _session() -> requests.Session:
    """This process's HTTP session (connections kept alive per receiver), made after the fork."""
    session = _sessions.get(os.getpid())
    if session is None:
        session = _sessions[os.getpid()] = requests.Session()
        session.trust_env = False  # a proxy from the environment must not see the events
    return session


def event_policy() -> RetryPolicy:
    """How often and how long an event is retried: ``EVENT_MAX_ATTEMPTS`` attempts, backoff from
    ``EVENT_RETRY_BASE_DELAY`` up to the send cap, within the broker's visibility timeout."""
    settings = get_settings()
    return RetryPolicy(
        max_deferral=celeryconfig.MAX_DEFERRAL,
        max_attempts=settings.event_max_attempts,
        base_delay=settings.event_retry_base_delay,
        max_delay=settings.send_retry_max_delay,
    )


@shared_task(base=GatewayTask, bind=True, name="events.deliver_event", ignore_result=True)
def deliver_event(self: GatewayTask, subscription_id: str, event: dict[str, Any]) -> str:
    """POST one event to one subscription; ``delivered``, ``unsubscribed`` (deleted meanwhile),
    ``retrying`` (raised as a retry) or ``dead_lettered``."""
    settings = get_settings()
    redis_client = get_redis(settings.redis_url)
    subscriptions = SubscriptionStore(redis_client, load_cipher())
    subscription = subscriptions.get(subscription_id)
    secret = subscriptions.secret(subscription_id) if subscription is not None else None
    if subscription is None or secret is None:
        log.info("event %s dropped: subscription %s deleted", event["id"], subscription_id)
        return "unsubscribed"
    policy = event_policy()
    attempt = (self.request.retries or 0) + 1
    try:
        deliver(
            subscription,
            secret,
            event,
            session=_session(),
            timeout=settings.event_timeout,
            allow_private=settings.event_allow_private_urls,
        )
    except SubscriptionRefused as exc:
        # The host now resolves somewhere events may not go: no retry will change that soon.
        error = {"class": type(exc).__name__, "code": None, "message": str(exc)}
        DeadLetterStore(redis_client).add_event(
            subscription_id, event, dl.PERMANENT_ERROR, error, attempts=attempt
        )
        return "dead_lettered"
    except DeliveryFailed as exc:
        log.warning(
            "event %s to %s failed (attempt %d of %d): %s",
            event["id"],
            subscription_id,
            attempt,
            policy.max_attempts,
            exc,
        )
        if attempt >= policy.max_attempts:
            error = {"class": type(exc).__name__, "code": exc.status, "message": str(exc)}
            DeadLetterStore(redis_client).add_event(
                subscription_id, event, dl.RETRIES_EXHAUSTED, error, attempts=attempt
            )
            return "dead_lettered"
        raise self.defer(policy.backoff(attempt)) from None
    log.info("event %s delivered to %s", event["id"], subscription_id)
    return "delivered"
