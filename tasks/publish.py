"""Publishing a Celery task and its deduplication mark in one atomic Redis step.

The webhook receiver is the gateway's hottest path. ``apply_async`` costs about 1.5 ms of Python
per task on top of the Redis round trip (kombu builds a Redis client per publish), and the
deduplication check needs round trips of its own. Here the task message is Celery's own
(``app.amqp.create_task_message``, built once per task name, its id and ids of origin filled in
per task), serialised as kombu's Redis transport stores it, and a Lua script marks the body seen and pushes the message together:
either both happen or neither, so a redelivery can never be dropped without its task queued,
nor queued twice. Workers consume these messages like any other (see the envelope test).

The same step journals the message (``keys.TASK_JOURNAL``) until a worker finishes its task
(``tasks.base.GatewayTask``): kombu's Redis transport pops a task before it records it as
unacknowledged, so a worker killed in between loses it, and the webhook's mark would then make
Meta's redelivery a duplicate. :func:`recover_lost_tasks` puts such a task back on its queue.
The tasks a webhook's task hands its work to (recording a turn, answering it, recording the
reply) are published journaled too (:meth:`TaskPublisher.publish`): nobody would redeliver them.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis
from celery import Celery, current_app, current_task, signals

from app import keys
from app.config import get_settings
from app.db import get_redis

log = logging.getLogger(__name__)

# KEYS[1] queue list, KEYS[2] journal, KEYS[3] journal due times, KEYS[4] (optional) dedup mark.
# ARGV[1] message, ARGV[2] task id, ARGV[3] now, ARGV[4] mark TTL. 1 queued, 0 already marked.
_QUEUE = """
if #KEYS == 4 and not redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[4]) then
  return 0
end
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
return 1
"""


class TaskPublisher:
    """Publishes tasks of ``celery_app`` straight onto their Redis queue lists."""

    def __init__(self, celery_app: Celery, redis_client: redis.Redis):
        self.celery_app = celery_app
        self.redis = redis_client
        self._queue_script = redis_client.register_script(_QUEUE)
        self._templates: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {}

    def message(
        self, task_name: str, args: list[Any], queue: str, argsrepr: str
    ) -> tuple[str, dict[str, Any], dict[str, Any], tuple]:
        """The JSON envelope kombu's Redis transport would push for this task, with the task
        message's headers, properties and body it was built from."""
        task_id = str(uuid.uuid4())
        # Published from inside a task: the new task is its child, as with apply_async, so that
        # logs and Flower follow a webhook through every step it leads to.
        parent = current_task.request if current_task else None
        parent_id = parent.id if parent is not None else None
        root_id = (parent.root_id or parent_id) if parent is not None else None
        headers, properties, embed = self._template(task_name)
        headers = {
            **headers,
            "id": task_id,
            "root_id": root_id or task_id,
            "parent_id": parent_id,
            "argsrepr": argsrepr,
        }
        properties = {**properties, "correlation_id": task_id}
        body = (args, {}, embed)
        envelope = {
            "body": base64.b64encode(json.dumps(body).encode()).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": {
                **properties,
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
        return json.dumps(envelope), headers, properties, body

    def _template(self, task_name: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """Celery's task message for ``task_name`` as its own protocol builds it, once per task
        name and process (its ``origin`` names the process): every publish then fills in only
        what varies. Building the whole message each time was most of a webhook's Python."""
        template = self._templates.get(task_name)
        if template is None:
            message = self.celery_app.amqp.create_task_message(
                "",
                task_name,
                [],
                {},
                kwargsrepr="{}",
                ignore_result=True,
                time_limit=self.celery_app.conf.task_time_limit,
                soft_time_limit=self.celery_app.conf.task_soft_time_limit,
            )
            template = self._templates[task_name] = (
                message.headers,
                message.properties,
                message.body[2],
            )
        return template

    def publish_once(
        self,
        task_name: str,
        args: list[Any],
        *,
        queue: str,
        dedup_key: str,
        dedup_ttl: int,
        argsrepr: str,
    ) -> bool:
        """Queue the task unless ``dedup_key`` is already marked; True if it was queued."""
        return self._queue(task_name, args, queue, argsrepr, mark=(dedup_key, dedup_ttl))

    def publish(self, task_name: str, args: list[Any], *, queue: str, argsrepr: str) -> None:
        """Queue the task, journaled until a worker finishes it, in one atomic step."""
        self._queue(task_name, args, queue, argsrepr)

    def publish_unjournaled(
        self, task_name: str, args: list[Any], *, queue: str, argsrepr: str
    ) -> None:
        """Queue the task without a journal entry: for a task whose work a store of its own
        tracks until done (a send's message is indexed with when its task is due, and
        ``outbound.recover_lost_sends`` queues it again if the broker loses it)."""
        message, headers, properties, body = self.message(task_name, args, queue, argsrepr)
        self.redis.lpush(queue, message)
        self.published(task_name, queue, headers, properties, body)

    def _queue(
        self,
        task_name: str,
        args: list[Any],
        queue: str,
        argsrepr: str,
        mark: tuple[str, int] | None = None,
    ) -> bool:
        """Queue and journal the task in one step, unless ``mark`` (key, TTL) is already set."""
        message, headers, properties, body = self.message(task_name, args, queue, argsrepr)
        script_keys = [queue, keys.TASK_JOURNAL, keys.TASK_JOURNAL_DUE]
        script_args = [message, headers["id"], time.time()]
        if mark is not None:
            script_keys.append(mark[0])
            script_args.append(mark[1])
        queued = bool(self._queue_script(keys=script_keys, args=script_args))
        if queued:
            self.published(task_name, queue, headers, properties, body)
        return queued

    @staticmethod
    def published(
        task_name: str, queue: str, headers: dict[str, Any], properties: dict[str, Any], body: tuple
    ) -> None:
        """Tell observers of published tasks (the signal apply_async sends) of one queued here."""
        signals.after_task_publish.send(
            sender=task_name,
            body=body,
            exchange="",
            routing_key=queue,
            headers=headers,
            properties=properties,
            declare=[],
            retry_policy=None,
        )


_publishers: dict[int, TaskPublisher] = {}


def task_publisher() -> TaskPublisher:
    """This process's publisher for the tasks one conversation step hands to the next, built on
    first use (in a worker, after it forked)."""
    publisher = _publishers.get(os.getpid())
    if publisher is None:
        redis_client = get_redis(get_settings().redis_url)
        publisher = _publishers[os.getpid()] = TaskPublisher(current_app, redis_client)
    return publisher


def recover_lost_tasks(
    redis_client: redis.Redis,
    queue_depth: Callable[[str], int],
    grace: float,
    now: float | None = None,
    limit: int = 1000,
) -> list[str]:
    """Put back on their queues the journaled tasks last seen more than ``grace`` seconds ago.

    ``grace`` is past the broker's own redelivery of a killed worker's tasks, and a task whose
    queue still holds messages is left alone (it may simply not have been reached yet). A task
    put back gets a new delivery tag, so the broker never confuses it with the original, and
    is given another ``grace`` before it could be put back again. Running a task twice is
    harmless: webhook tasks resume from claims keyed by their task id. Returns the task ids.
    """
    now = time.time() if now is None else now
    recovered = []
    for task_id in redis_client.zrangebyscore(
        keys.TASK_JOURNAL_DUE, "-inf", now - grace, start=0, num=limit
    ):
        raw = redis_client.hget(keys.TASK_JOURNAL, task_id)
        if raw is None:  # finished meanwhile
            redis_client.zrem(keys.TASK_JOURNAL_DUE, task_id)
            continue
        envelope = json.loads(raw)
        queue = envelope["properties"]["delivery_info"]["routing_key"]
        if queue_depth(queue) > 0:
            continue
        envelope["properties"]["delivery_tag"] = str(uuid.uuid4())
        pipe = redis_client.pipeline()
        pipe.lpush(queue, json.dumps(envelope))
        pipe.zadd(keys.TASK_JOURNAL_DUE, {task_id: now}, xx=True)
        pipe.execute()
        recovered.append(task_id)
    if recovered:
        log.warning("%d tasks were lost by the broker and are queued again", len(recovered))
    return recovered
