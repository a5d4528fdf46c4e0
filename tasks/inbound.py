"""Inbound tasks: one webhook delivery as Meta sent it, and answering one customer turn."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

from celery import current_task, shared_task

import celeryconfig
from app import keys
from app.clients import client_for
from app.config import get_settings
from app.conversations.context import ConversationBusyError
from app.conversations.inbound import (
    answer_turn,
    error_of,
    handle_webhook,
    record_reply,
    record_turn,
    reply_id,
)
from app.conversations.media import MediaFetcher
from app.conversations.mediastore import media_store_for, sweep_expired_media
from app.conversations.optout import OptOutPolicy
from app.conversations.responders.factory import build_responder
from app.conversations.responders.service import ReplyService, add_response_observer
from app.db import get_redis
from app.delivery import dead_letters as dl
from app.delivery.dead_letters import DeadLetterStore
from app.events import subscriptions
from app.ops import metrics
from app.ops.observe import observe_webhook
from app.whatsapp.webhook import WebhookFormatError
from tasks.base import COMES_BACK, GatewayTask, InboundUnitTask
from tasks.enqueue import (
    enqueue_notify_handoff,
    enqueue_record_reply,
    enqueue_record_turn,
    enqueue_send_message,
)
from tasks.publish import recover_lost_tasks
from tasks.statuslane import APPLY_STATUSES, status_lane

log = logging.getLogger(__name__)

_services: dict[int, ReplyService] = {}

LOCAL_RESPONDERS = frozenset({"rules"})
"""Responder backends that answer in microseconds, in this process: their turns are recorded and
answered in the webhook's task (see :func:`record_and_answer`)."""


def reply_service() -> ReplyService:
    """This process's responder service, built on first use (after the worker forked)."""
    service = _services.get(os.getpid())
    if service is None:
        settings = get_settings()
        service = _services[os.getpid()] = ReplyService(
            build_responder(settings),
            redis_client=get_redis(settings.redis_url),
            timeout=settings.responder_timeout,
            fallback_reply=settings.responder_fallback_reply,
            cache_ttl=settings.ai_cache_ttl,
        )
    return service


def _observe_ai_response(backend: str, seconds: float, outcome: str) -> None:
    metrics.observe_ai_response("reply" if outcome == "ok" else "fallback", seconds)


add_response_observer(_observe_ai_response)


@shared_task(bind=True, base=InboundUnitTask, unit_kind="webhook", name="inbound.process_webhook")
def process_webhook(self, payload: dict[str, Any]) -> dict[str, Any]:
    """Apply the statuses and pass on the messages of one webhook delivery.

    Claims are keyed by this task's id, so a redelivery of this same message (after a Redis
    failure or a lost worker) takes up where the first run stopped.
    """
    try:
        return handle(payload, self.request.id or "")
    except WebhookFormatError as exc:
        return self.dead_letter(dl.MALFORMED, {"message": str(exc), "code": None}, payload)


def handle(payload: dict[str, Any], owner: str, learnt: dict | None = None) -> dict[str, Any]:
    """Apply one webhook delivery, observed (metrics and log ids); ``owner`` keys its claims, and
    ``learnt`` is shared by the deliveries of one batch (see ``handle_webhook``). Raises
    :class:`WebhookFormatError` when the payload is not a webhook at all."""
    settings = get_settings()
    # Receipts and downloads use the token of the number each message was sent to.
    fetch_media = MediaFetcher(
        lambda phone_number_id: client_for(settings, phone_number_id),
        media_store_for(settings),
        settings.media_max_bytes,
    )
    with observe_webhook(payload) as observed:
        result = handle_webhook(
            payload,
            redis_client=get_redis(settings.redis_url),
            enqueue_turn=turn_step(settings.responder_backend),
            mark_read=lambda phone_number_id, message_id, typing: client_for(
                settings, phone_number_id
            ).mark_read(message_id, typing_indicator=typing),
            fetch_media=fetch_media,
            owner=owner,
            opt_out=OptOutPolicy.from_settings(settings),
            enqueue_send=enqueue_send_message,
            observe_priced=metrics.observe_priced,
            learnt=learnt,
        )
        observed.duplicates = result.duplicates
        observed.customers = result.customers
        # The ids replies to these messages will carry, so logs follow a message to its answer.
        observed.replies = [reply_id(wamid) for wamid in result.accepted]
    return result.to_dict()


class StatusLaneTask(GatewayTask):
    """Base of ``inbound.apply_statuses``: a run whose batch killed its workers dead-letters the
    batch's webhooks, each replayable through ``inbound.process_webhook``."""

    def on_poison(self, deaths: int, *args: Any, **kwargs: Any) -> Any:
        lane = status_lane()
        task_id = self.request.id
        error = {"message": f"its batch killed {deaths} workers", "code": None}
        bodies = lane.taken(task_id)
        for body in bodies:
            dead_letter_webhook(body, dl.POISON, error, task_id)
        lane.finish(task_id)
        lane.nudge()  # the bodies behind this batch
        return {"dead_lettered": len(bodies)}


@shared_task(bind=True, base=StatusLaneTask, name=APPLY_STATUSES, ignore_result=True)
def apply_statuses(self) -> dict[str, int]:
    """Apply the status webhooks waiting in the lane, a batch at a time, until it is empty (see
    ``tasks.statuslane``). A run that has applied for longer than its budget hands the rest to a
    task of its own, so a busy lane never holds one pool process for good."""
    lane = status_lane()
    task_id = self.request.id or str(uuid.uuid4())
    lane.open()
    applied = 0
    deadline = time.monotonic() + celeryconfig.STATUS_BATCH_TIME_BUDGET
    while bodies := lane.take(task_id, celeryconfig.STATUS_BATCH_SIZE):
        learnt: dict = {}  # a customer's statuses in one batch learn their ids once
        with subscriptions.read_once():  # and the batch's events read the subscriptions once
            for body in bodies:
                apply_status_webhook(body, task_id, learnt)
        lane.finish(task_id)
        applied += len(bodies)
        if time.monotonic() > deadline:
            lane.nudge()
            break
    return {"webhooks": applied}


def apply_status_webhook(body: str, task_id: str, learnt: dict | None = None) -> None:
    """Apply one webhook of the lane as ``inbound.process_webhook`` would; one that fails is
    dead-lettered whole, replayable through that task, and the batch goes on."""
    try:
        payload = json.loads(body)
    except ValueError:
        dead_letter_webhook(body, dl.MALFORMED, {"message": "not JSON", "code": None}, task_id)
        return
    try:
        handle(payload, task_id, learnt)
        return
    except COMES_BACK:
        raise
    except WebhookFormatError as exc:
        reason, error = dl.MALFORMED, {"message": str(exc), "code": None}
    except Exception as exc:  # noqa: BLE001 - this webhook is kept; the batch's others go on
        reason, error = dl.INTERNAL_ERROR, error_of(exc)
        log.error(
            "%s[%s]: %s at %s",
            APPLY_STATUSES,
            task_id,
            error["class"],
            error["where"],
            extra={"dead_letter_reason": reason},
        )
    dead_letter_webhook(body, reason, error, task_id)


def dead_letter_webhook(body: str, reason: str, error: dict[str, Any], task_id: str) -> None:
    """Keep a webhook of the lane as ``inbound.process_webhook`` keeps a webhook it cannot apply."""
    try:
        payload: Any = json.loads(body)
    except ValueError:
        payload = body
    DeadLetterStore(get_redis(get_settings().redis_url)).add_inbound(
        "webhook",
        reason,
        payload,
        task=process_webhook.name,
        payload=payload,
        source=task_id,
        error=error,
    )


def turn_step(responder_backend: str) -> Callable[[dict[str, Any]], None]:
    """Where a webhook's new turn goes: recorded and answered at once when the responder is
    local, else to ``context.record_turn`` (so a slow AI answers in a task of its own, and never
    holds the webhooks or the conversation writes behind it)."""
    return record_and_answer if responder_backend in LOCAL_RESPONDERS else enqueue_record_turn


def record_and_answer(turn: dict[str, Any]) -> None:
    """Record a customer's turn, answer it and record the reply, in this run: the work of
    ``context.record_turn``, ``inbound.answer_turn`` and ``context.record_reply`` without the
    three tasks' publishing, reservation and bookkeeping.

    The order is theirs: the turn is recorded before it is answered, and the reply after both.
    Two turns of one customer in two webhooks race here as their ``record_turn`` tasks raced on
    the context queue (two pool processes), and the conversation's optimistic update keeps both.
    A redelivered webhook task resumes from its claim: the turn is recorded by its message id, the
    reply's id derives from the turn's and is created once, and its send is idempotent, so the
    customer is answered once. A conversation that stays busy hands the turn to
    ``context.record_turn``, whose retries back off; what this run did is found done there. A
    turn that fails unexpectedly is dead-lettered alone, replayable through that task, and the
    webhook's other messages and statuses go on.
    """
    settings = get_settings()
    redis_client = get_redis(settings.redis_url)

    def answer(recorded: dict[str, Any]) -> None:
        answer_turn(
            recorded,
            redis_client=redis_client,
            service=reply_service(),
            enqueue_send=enqueue_send_message,
            enqueue_reply=lambda reply: record_reply(reply, redis_client=redis_client),
            context_messages=settings.context_messages,
        )

    try:
        record_turn(
            turn,
            redis_client=redis_client,
            enqueue_answer=answer,
            notify_handoff=enqueue_notify_handoff,
        )
    except ConversationBusyError:
        enqueue_record_turn(turn)
    except COMES_BACK:
        raise
    except Exception as exc:  # noqa: BLE001 - this turn is kept; the webhook's other parts go on
        # Kept as context.record_turn would keep it, and replayed through that task.
        task_id = current_task.request.id if current_task else None
        DeadLetterStore(redis_client).add_inbound(
            "turn",
            dl.INTERNAL_ERROR,
            turn,
            task="context.record_turn",
            payload=turn,
            source=task_id,
            error=error_of(exc),
        )


@shared_task(base=InboundUnitTask, unit_kind="answer", name="inbound.answer_turn")
def answer_turn_task(turn: dict[str, Any]) -> str | None:
    """Answer one recorded customer turn; the reply's message id, if any."""
    return answer_turn(
        turn,
        redis_client=get_redis(get_settings().redis_url),
        service=reply_service(),
        enqueue_send=enqueue_send_message,
        enqueue_reply=enqueue_record_reply,
        context_messages=get_settings().context_messages,
    )


@shared_task(base=GatewayTask, name="inbound.recover_lost_tasks", ignore_result=True)
def recover_lost_tasks_task() -> int:
    """Queue again the journaled tasks the broker lost (run by beat; see ``recover_lost_tasks``)."""
    redis_client = get_redis(get_settings().redis_url)
    recovered = recover_lost_tasks(
        redis_client, redis_client.llen, grace=celeryconfig.TASK_RECOVERY_GRACE
    )
    # Status webhooks taken by tasks that will not run again; a lane left without a task.
    status_lane().recover(lambda task_id: redis_client.hexists(keys.TASK_JOURNAL, task_id))
    return len(recovered)


@shared_task(base=GatewayTask, name="inbound.sweep_expired_media", ignore_result=True)
def sweep_expired_media_task() -> int:
    """Delete media older than ``MEDIA_RETENTION_DAYS`` from the store (run by beat, daily)."""
    settings = get_settings()
    return sweep_expired_media(media_store_for(settings), settings.media_retention_days)
