"""Each queue has its own exchange and routing key: a task sent to a queue, by its route or by
its exchange, is found in that queue and in no other (counted in kombu's Redis lists)."""

from __future__ import annotations

import pytest

import celeryconfig
from app.ops.queues import queue_depths
from workers import app

QUEUES = [queue.name for queue in celeryconfig.task_queues]

ROUTED = {
    celeryconfig.QUEUE_INBOUND: ("inbound.process_webhook", {}),
    celeryconfig.QUEUE_CONTEXT: ("context.record_turn", {}),
    celeryconfig.QUEUE_ALERTS: ("alerts.evaluate", {}),
    celeryconfig.QUEUE_EVENTS: ("events.deliver_event", {}),
    celeryconfig.QUEUE_SEND_NORMAL: ("outbound.send_message", {}),
    # Callers pick the other lanes by name, as the send API does.
    celeryconfig.QUEUE_SEND_HIGH: (
        "outbound.send_message",
        {"queue": celeryconfig.QUEUE_SEND_HIGH},
    ),
    celeryconfig.QUEUE_SEND_BULK: ("outbound.send_batch", {"queue": celeryconfig.QUEUE_SEND_BULK}),
}


def test_each_queue_has_its_own_exchange_and_routing_key():
    assert sorted(ROUTED) == sorted(QUEUES)
    for queue in celeryconfig.task_queues:
        assert (queue.exchange.name, queue.exchange.type) == (f"wa.{queue.name}", "direct")
        assert queue.routing_key == queue.name


def _declare_queues() -> None:
    """Declare every queue and its binding, as a worker does when it starts."""
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for queue in app.amqp.queues.values():
            queue.bind(channel).declare()


@pytest.mark.parametrize("queue", QUEUES)
def test_a_task_routed_to_a_queue_is_in_that_queue_alone(redis_client, queue):
    _declare_queues()
    task, options = ROUTED[queue]
    app.send_task(task, args=[{}], **options)
    assert queue_depths(redis_client, QUEUES) == {q: int(q == queue) for q in QUEUES}


@pytest.mark.parametrize("queue", QUEUES)
def test_a_task_sent_to_a_queues_exchange_is_in_that_queue_alone(redis_client, queue):
    _declare_queues()
    app.send_task("inbound.process_webhook", args=[{}], exchange=f"wa.{queue}", routing_key=queue)
    assert queue_depths(redis_client, QUEUES) == {q: int(q == queue) for q in QUEUES}


@pytest.mark.parametrize("queue", QUEUES)
def test_the_shared_binding_an_older_version_left_in_redis_copies_nothing(redis_client, queue):
    # Older versions bound all six queues to exchange "inbound" with routing key "inbound"; an
    # upgraded deployment still has that binding table, and no route may go through it.
    for name in QUEUES:
        redis_client.sadd("_kombu.binding.inbound", f"inbound\x06\x16\x06\x16{name}")
    _declare_queues()
    declared = app.amqp.queues[queue]
    app.send_task(
        "inbound.process_webhook",
        args=[{}],
        exchange=declared.exchange.name,
        routing_key=declared.routing_key,
    )
    assert queue_depths(redis_client, QUEUES) == {q: int(q == queue) for q in QUEUES}
