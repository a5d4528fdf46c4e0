"""Send tasks, on the lane each message's priority names: one message per task, or a batch of
messages of one lane per task (see ``send_batch``)."""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import os
import threading
import time
from collections.abc import Callable

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

import celeryconfig
from app.clients import client_for
from app.config import get_settings
from app.db import get_redis
from app.delivery import dead_letters as dl
from app.delivery.dead_letters import DeadLetterStore
from app.delivery.messages import MessageStore
from app.delivery.ratelimit import SendRateLimiter
from app.delivery.sender import (
    Claim,
    Sender,
    SendOutcome,
    SendResult,
    claim_send,
    complete_send,
    handle_send_failure,
    nothing_to_send,
    recover_lost_sends,
    send_recorded_message,
)
from app.whatsapp.errors import GraphTimeoutError
from tasks.base import SEND_POLICY, GatewayTask, bounded_countdown
from tasks.enqueue import enqueue_send_batch, enqueue_send_message, enqueue_sends

log = logging.getLogger(__name__)

_limiters: dict[int, SendRateLimiter] = {}

_call_threads = threading.local()


def call_threads() -> concurrent.futures.ThreadPoolExecutor:
    """The threads that make a batch's Graph calls, kept by each pool thread (or process) from
    one batch to the next, rather than ten started and joined by every batch. A batch holds at
    most ``SEND_BATCH_CONCURRENCY`` of them at once (its slots)."""
    executor = getattr(_call_threads, "executor", None)
    if executor is None or _call_threads.pid != os.getpid():  # threads do not survive a fork
        executor = _call_threads.executor = concurrent.futures.ThreadPoolExecutor(
            celeryconfig.SEND_BATCH_CONCURRENCY, thread_name_prefix="send"
        )
        _call_threads.pid = os.getpid()
    return executor


def sender() -> Sender:
    """This process's :class:`Sender`: stores and limiter on its Redis pool, a Graph client per
    sending number."""
    settings = get_settings()
    redis_client = get_redis(settings.redis_url)
    limiter = _limiters.get(id(redis_client))
    if limiter is None:
        limiter = _limiters[id(redis_client)] = SendRateLimiter.from_settings(redis_client)
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


def send_one(
    s: Sender, message_id: str, step: Callable[[], Claim | SendResult] | None = None
) -> Claim | SendResult:
    """Everything a send task does for one message, short of deferring it (see send_message):
    ``step`` (default: the whole send), with a failure of ours kept as a dead letter."""
    try:
        try:
            return step() if step is not None else send_recorded_message(s, message_id)
        except SoftTimeLimitExceeded:
            # The send hung past the task's soft limit: a timeout, like any other.
            timeout = GraphTimeoutError("the send exceeded the task's time limit")
            return handle_send_failure(s, message_id, timeout)
    except (RedisError, OperationalError):
        raise  # GatewayTask hands the message back; nothing was recorded, so it is safe to rerun
    except Exception as exc:
        # A defect of ours: keep the message, with the reason, rather than lose it.
        log.exception("message %s: unexpected error", message_id)
        error = {"message": f"{type(exc).__name__}: {exc}"[:500], "code": None}
        s.dead_letters.add(s.store, message_id, dl.INTERNAL_ERROR, error)
        return SendResult(SendOutcome.DEAD_LETTERED)


@shared_task(bind=True, base=SendTask, name="outbound.send_message", max_retries=None)
def send_message(self, message_id: str) -> str:
    """Send one recorded message; defer when limited, retry passing failures, dead-letter the rest."""
    result = send_one(sender(), message_id)
    if result.retry_in is not None:
        raise self.defer(result.retry_in)
    return result.outcome.value


class SendBatchTask(SendTask):
    """A batch whose run killed its worker is split at once: each of its messages not yet
    finished goes on as a task of its own, so that the guard finds the one that kills, and
    dead-letters it alone, while the others are sent."""

    max_redeliveries = 0

    def on_poison(self, deaths: int, message_ids: list[str], priority: str) -> str:
        store = sender().store
        pending = [i for i in message_ids if not nothing_to_send(store.get(i))]
        log.warning("a batch of %d killed its worker; sending them one by one", len(pending))
        enqueue_sends([(message_id, priority) for message_id in pending], batch_size=1)
        return "split"


@shared_task(bind=True, base=SendBatchTask, name="outbound.send_batch", max_retries=None)
def send_batch(self, message_ids: list[str], priority: str) -> dict[str, int]:
    """Send recorded messages of one lane in one task, up to ``SEND_BATCH_CONCURRENCY`` Graph
    calls in flight.

    Each message keeps its own lock, status, retries and dead-lettering, exactly as with
    ``send_message``; the batch saves the broker round trips of a task per message. The task
    claims the messages one after the other (lock, rate-limit token, attempt) and hands each
    claimed one's Graph call to a thread, so a number stays at its rate when each call takes
    hundreds of milliseconds, and the rate limiter sees one caller. When it makes a message
    wait, the task waits in place up to ``SEND_BATCH_MAX_WAIT``; past that the rest go on as
    one batch when the message's turn comes. A message to retry goes on alone, with its own
    countdown. A batch past ``SEND_BATCH_TIME_BUDGET`` seconds hands the rest on, so a slow
    Graph API cannot push it into its time limits. Replies do not wait for batches: the
    Procfile's ``send-high`` process serves the high lane alone.
    """
    s = sender()
    started = time.monotonic()
    outcomes: collections.Counter[str] = collections.Counter()
    slots = threading.BoundedSemaphore(celeryconfig.SEND_BATCH_CONCURRENCY)

    def over_budget() -> bool:
        return time.monotonic() - started > celeryconfig.SEND_BATCH_TIME_BUDGET

    def claim(message_id: str) -> Claim | SendResult:
        slots.acquire()  # a thread free for its call before a token is taken for it
        claimed = send_one(s, message_id, lambda: claim_send(s, message_id))
        while (
            not isinstance(claimed, Claim)
            and claimed.outcome is SendOutcome.RATE_LIMITED
            and claimed.retry_in <= celeryconfig.SEND_BATCH_MAX_WAIT
            and not over_budget()
        ):
            time.sleep(claimed.retry_in)
            claimed = send_one(s, message_id, lambda: claim_send(s, message_id))
        if not isinstance(claimed, Claim):
            slots.release()
        return claimed

    def complete(claim: Claim) -> SendResult:
        try:
            return send_one(s, claim.message_id, lambda: complete_send(s, claim))
        finally:
            slots.release()

    def settle(message_id: str, result: SendResult) -> None:
        outcomes[result.outcome.value] += 1
        if result.retry_in is not None and result.outcome is not SendOutcome.RATE_LIMITED:
            enqueue_send_message(message_id, priority, countdown=bounded_countdown(result.retry_in))

    in_flight: list[tuple[str, concurrent.futures.Future[SendResult]]] = []
    calls = call_threads()
    try:
        for index, message_id in enumerate(message_ids):
            if index and over_budget():
                hand_on(s, message_ids[index:], priority, countdown=0)
                outcomes["handed_on"] += len(message_ids) - index
                break
            claimed = claim(message_id)
            if isinstance(claimed, Claim):
                in_flight.append((message_id, calls.submit(complete, claimed)))
                continue
            settle(message_id, claimed)
            if claimed.outcome is SendOutcome.RATE_LIMITED:
                hand_on(s, message_ids[index:], priority, bounded_countdown(claimed.retry_in))
                outcomes["handed_on"] += len(message_ids) - index - 1
                break
        for message_id, call in in_flight:
            settle(message_id, call.result())
    finally:
        # Whatever stopped the batch, its calls end before it does, as their locks expect.
        concurrent.futures.wait([call for _, call in in_flight])
    return dict(outcomes)


def hand_on(s: Sender, message_ids: list[str], priority: str, countdown: float) -> None:
    """Send ``message_ids`` as a new batch in ``countdown`` seconds, noting when it is due."""
    s.store.expect_runs(message_ids, time.time() + countdown)
    enqueue_send_batch(message_ids, priority, countdown=countdown)


@shared_task(base=GatewayTask, name="outbound.recover_lost_sends", ignore_result=True)
def recover_lost_sends_task() -> int:
    """Enqueue again the sends the broker lost (run by beat; see ``recover_lost_sends``)."""
    redis_client = get_redis(get_settings().redis_url)
    recovered = recover_lost_sends(
        MessageStore(redis_client),
        enqueue_send_message,
        lane_depth=lambda lane: redis_client.llen(celeryconfig.SEND_QUEUES[lane]),
        grace=celeryconfig.SEND_RECOVERY_GRACE,
    )
    return len(recovered)
