"""Putting tasks on the broker: one helper per task, named after the task it queues.

Tasks are named, not imported, so any task module (and the web process) can queue any task
without importing another task module: the conversation steps hand work to one another, and a
send task queues more send tasks. A test checks that each lands on its queue under a name the worker knows.

The conversation steps are published journaled (:meth:`tasks.publish.TaskPublisher.publish`):
nobody would redeliver them if the broker lost them. Sends are not journaled, since the message
store already records when each send is due (see ``recover_lost_sends``).
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

from celery import current_app

import celeryconfig
from tasks.publish import task_publisher


def turn_summary(turn: dict) -> str:
    """What Celery shows of a conversation task's argument (in logs and Flower): its ids only,
    never the customer's words or number."""
    ident = turn.get("id") or (turn.get("exchange") or {}).get("id")
    return f"<{turn.get('type') or 'turn'} {ident}>"


def enqueue_record_turn(turn: dict[str, Any]) -> None:
    """Put the task that records a customer's turn on the context queue, journaled."""
    task_publisher().publish(
        "context.record_turn", [turn], queue=celeryconfig.QUEUE_CONTEXT, argsrepr=turn_summary(turn)
    )


def enqueue_record_reply(reply: dict[str, Any]) -> None:
    """Put the task that records the business's reply on the context queue, journaled."""
    task_publisher().publish(
        "context.record_reply",
        [reply],
        queue=celeryconfig.QUEUE_CONTEXT,
        argsrepr=turn_summary(reply),
    )


def enqueue_answer_turn(turn: dict[str, Any]) -> None:
    """Put the task that answers a recorded turn on the inbound queue, journaled."""
    task_publisher().publish(
        "inbound.answer_turn", [turn], queue=celeryconfig.QUEUE_INBOUND, argsrepr=turn_summary(turn)
    )


def enqueue_process_webhook(payload: dict[str, Any]) -> None:
    """Put a webhook task on the inbound queue, journaled (the web's own publish deduplicates;
    this one is for a webhook replayed from a dead letter)."""
    task_publisher().publish(
        "inbound.process_webhook",
        [payload],
        queue=celeryconfig.QUEUE_INBOUND,
        argsrepr="<replayed webhook>",  # no customer text in Flower or logs
    )


def enqueue_deliver_event(subscription_id: str, event: dict[str, Any]) -> None:
    """Put the task that delivers ``event`` to one subscription on the events queue, journaled:
    a delivery the broker lost is queued again by the sweep, as conversation steps are (and a
    publish costs a fraction of Celery's, in the step that emits the event)."""
    task_publisher().publish(
        "events.deliver_event",
        [subscription_id, event],
        queue=celeryconfig.QUEUE_EVENTS,
        argsrepr=f"<{event['type']} {event['id']} for {subscription_id}>",  # no customer text
    )


def enqueue_notify_handoff(handoff: dict[str, Any]) -> None:
    """Put the task that notifies the alert channels of a handoff on the alerts queue."""
    current_app.send_task(
        "alerts.notify_handoff",
        args=[handoff],
        queue=celeryconfig.QUEUE_ALERTS,
        ignore_result=True,
        argsrepr="<handoff>",  # the customer's id stays out of logs and Flower
    )


def _redeliver_event(payload: dict[str, Any]) -> None:
    enqueue_deliver_event(payload["subscription_id"], payload["event"])


def requeue(task_name: str, argument: Any) -> None:
    """Run a conversation step, or an event delivery, again with its one argument: how an
    inbound or event dead letter is replayed (see ``app.delivery.dead_letters``)."""
    helpers = {
        "inbound.process_webhook": enqueue_process_webhook,
        "context.record_turn": enqueue_record_turn,
        "context.record_reply": enqueue_record_reply,
        "inbound.answer_turn": enqueue_answer_turn,
        "events.deliver_event": _redeliver_event,
    }
    if task_name not in helpers:
        raise ValueError(f"{task_name} is not a conversation step nor an event delivery")
    helpers[task_name](argument)


def enqueue_send_message(message_id: str, priority: str, **options: Any) -> None:
    """Put the send task for ``message_id`` on the ``priority`` lane; ``options`` (a countdown,
    a producer to share) go to Celery's own publishing, and without them the task is written
    straight to its queue (a reply's send: a tenth of the inbound task's CPU went to Celery's
    publishing path)."""
    if not options:
        task_publisher().publish_unjournaled(
            "outbound.send_message",
            [message_id],
            queue=celeryconfig.SEND_QUEUES[priority],
            argsrepr=repr([message_id]),
        )
        return
    # ignore_result as the task itself declares it (apply_async passes it; send_task does not).
    current_app.send_task(
        "outbound.send_message",
        args=[message_id],
        queue=celeryconfig.SEND_QUEUES[priority],
        ignore_result=True,
        **options,
    )


def enqueue_send_batch(message_ids: list[str], priority: str, **options: Any) -> None:
    """Put one batch task for ``message_ids`` on the ``priority`` lane."""
    current_app.send_task(
        "outbound.send_batch",
        args=[message_ids, priority],
        queue=celeryconfig.SEND_QUEUES[priority],
        ignore_result=True,
        **options,
    )


def enqueue_sends(
    pairs: Sequence[tuple[str, str]], batch_size: int = celeryconfig.SEND_BATCH_SIZE
) -> None:
    """Put the send tasks for (message_id, priority lane) pairs on the broker, over one connection.

    Messages on the batched lanes (``celeryconfig.SEND_BATCHED_LANES``) go up to ``batch_size``
    to a task (``send_batch``); the others one to a task (``send_message``). Raises at once if
    the broker is unreachable (no silent retries: the API answers 503).
    """
    batches: dict[str, list[str]] = collections.defaultdict(list)
    with current_app.producer_or_acquire() as producer:
        options = {"producer": producer, "retry": False}
        for message_id, priority in pairs:
            if batch_size > 1 and priority in celeryconfig.SEND_BATCHED_LANES:
                batches[priority].append(message_id)
                if len(batches[priority]) == batch_size:
                    enqueue_send_batch(batches.pop(priority), priority, **options)
            else:
                enqueue_send_message(message_id, priority, **options)
        for priority, ids in batches.items():
            if len(ids) == 1:
                enqueue_send_message(ids[0], priority, **options)
            else:
                enqueue_send_batch(ids, priority, **options)


def enqueue_dispatch_campaign(campaign_id: str, position: int, countdown: float = 0.0) -> None:
    """Put the task that hands out a campaign's chunk from ``position`` on the bulk lane, after
    ``countdown`` seconds (the campaign's pace)."""
    current_app.send_task(
        "campaigns.dispatch_campaign",
        args=[campaign_id, position],
        queue=celeryconfig.QUEUE_SEND_BULK,
        countdown=countdown or None,
        ignore_result=True,
    )
