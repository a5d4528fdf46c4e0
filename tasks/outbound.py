"""Send tasks: one message id per task, on the lane its priority names."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

import celeryconfig
from app.config import get_settings
from app.db import get_redis
from app.delivery import dead_letters as dl
from app.delivery.dead_letters import DeadLetterStore
from app.delivery.messages import MessageStore
from app.delivery.ratelimit import SendRateLimiter
from app.delivery.sender import (
    Sender,
    handle_send_failure,
    recover_lost_sends,
    send_recorded_message,
)
from app.whatsapp.client import client_for
from app.whatsapp.errors import GraphTimeoutError
from tasks.base import SEND_POLICY, GatewayTask

log = logging.getLogger(__name__)

_limiters: dict[int, SendRateLimiter] = {}


def enqueue_send(message_id: str, priority: str, **options: Any) -> None:
    """Put the send task for ``message_id`` on the ``priority`` lane."""
    send_message.apply_async(args=[message_id], queue=celeryconfig.SEND_QUEUES[priority], **options)


def sender() -> Sender:
    """This process's :class:`Sender`: stores and limiter on its Redis pool, a Graph client per
    sending number."""
    settings = get_settings()
    redis_client = get_redis(settings.redis_url)
    limiter = _limiters.get(id(redis_client))
    if limiter is None:
        limiter = _limiters[id(redis_client)] = SendRateLimiter.from_env(redis_client)
    return Sender(
        store=MessageStore(redis_client),
        dead_letters=DeadLetterStore(redis_client),
        client_for=lambda phone_number_id: client_for(settings, phone_number_id),
        limiter=limiter,
        policy=SEND_POLICY,
        lock_ttl=celeryconfig.task_time_limit,
    )


class SendTask(GatewayTask):
    """The send task's base: a poison message is dead-lettered instead of run again."""

    def on_poison(self, deaths: int, message_id: str) -> str:
        s = sender()
        s.dead_letters.add(
            s.store,
            message_id,
            dl.POISON,
            {"message": f"its send task killed {deaths} workers", "code": None},
        )
        return dl.POISON


@shared_task(bind=True, base=SendTask, name="outbound.send_message", max_retries=None)
def send_message(self, message_id: str) -> str:
    """Send one recorded message; defer when limited, retry passing failures, dead-letter the rest."""
    try:
        s = sender()
        try:
            result = send_recorded_message(s, message_id)
        except SoftTimeLimitExceeded:
            # The send hung past the task's soft limit: a timeout, like any other.
            timeout = GraphTimeoutError("the send exceeded the task's time limit")
            result = handle_send_failure(s, message_id, timeout)
    except (RedisError, OperationalError):
        raise  # GatewayTask hands the message back; nothing was recorded, so it is safe to rerun
    except Exception as exc:
        # A defect of ours: keep the message, with the reason, rather than lose it.
        log.exception("message %s: unexpected error", message_id)
        s = sender()
        error = {"message": f"{type(exc).__name__}: {exc}"[:500], "code": None}
        s.dead_letters.add(s.store, message_id, dl.INTERNAL_ERROR, error)
        return dl.INTERNAL_ERROR
    if result.retry_in is not None:
        raise self.defer(result.retry_in)
    return result.outcome.value


def enqueue_sends(pairs: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> None:
    """Put one send task per (message_id, priority lane) on the broker, over one connection.

    Raises at once if the broker is unreachable (no silent retries: the API answers 503).
    """
    with send_message.app.producer_or_acquire() as producer:
        for message_id, priority in pairs:
            send_message.apply_async(
                args=[message_id],
                queue=celeryconfig.SEND_QUEUES[priority],
                producer=producer,
                retry=False,
            )


@shared_task(base=GatewayTask, name="outbound.recover_lost_sends", ignore_result=True)
def recover_lost_sends_task() -> int:
    """Enqueue again the sends the broker lost (run by beat; see ``recover_lost_sends``)."""
    redis_client = get_redis(get_settings().redis_url)
    recovered = recover_lost_sends(
        MessageStore(redis_client),
        enqueue_send,
        lane_depth=lambda lane: redis_client.llen(celeryconfig.SEND_QUEUES[lane]),
        grace=celeryconfig.SEND_RECOVERY_GRACE,
    )
    return len(recovered)
