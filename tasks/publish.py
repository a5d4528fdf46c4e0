"""Publishing a Celery task and its deduplication mark in one atomic Redis step.

The webhook receiver is the gateway's hottest path. ``apply_async`` costs about 1.5 ms of Python
per task on top of the Redis round trip (kombu builds a Redis client per publish), and the
deduplication check needs round trips of its own. Here the task message is built with Celery's
own protocol (``app.amqp.create_task_message``) and kombu's serialisation, exactly as kombu's
Redis transport stores it, and a Lua script marks the body seen and pushes the message together:
either both happen or neither, so a redelivery can never be dropped without its task queued,
nor queued twice. Workers consume these messages like any other (see the envelope test).
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import redis
from celery import Celery, signals
from kombu.serialization import dumps as kombu_dumps
from kombu.utils.encoding import bytes_to_str, str_to_bytes

# KEYS[1] dedup mark, KEYS[2] queue list. ARGV[1] mark TTL, ARGV[2] message. 1 queued, 0 duplicate.
_MARK_AND_PUSH = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('LPUSH', KEYS[2], ARGV[2])
  return 1
end
return 0
"""


class TaskPublisher:
    """Publishes tasks of ``celery_app`` straight onto their Redis queue lists."""

    def __init__(self, celery_app: Celery, redis_client: redis.Redis):
        self.celery_app = celery_app
        self.redis = redis_client
        self._mark_and_push = redis_client.register_script(_MARK_AND_PUSH)

    def message(
        self, task_name: str, args: list[Any], queue: str, argsrepr: str
    ) -> tuple[str, Any]:
        """The JSON envelope kombu's Redis transport would push for this task, and Celery's
        task message it was built from."""
        task_id = str(uuid.uuid4())
        task_message = self.celery_app.amqp.create_task_message(
            task_id,
            task_name,
            args,
            {},
            argsrepr=argsrepr,
            kwargsrepr="{}",
            ignore_result=True,
            time_limit=self.celery_app.conf.task_time_limit,
            soft_time_limit=self.celery_app.conf.task_soft_time_limit,
        )
        content_type, content_encoding, body = kombu_dumps(task_message.body, serializer="json")
        envelope = {
            "body": bytes_to_str(base64.b64encode(str_to_bytes(body))),
            "content-encoding": content_encoding,
            "content-type": content_type,
            "headers": task_message.headers,
            "properties": {
                **task_message.properties,
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
        return json.dumps(envelope), task_message

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
        message, task_message = self.message(task_name, args, queue, argsrepr)
        queued = bool(self._mark_and_push(keys=[dedup_key, queue], args=[dedup_ttl, message]))
        if queued:
            # The signal apply_async sends, so observers of published tasks see these too.
            signals.after_task_publish.send(
                sender=task_name,
                body=task_message.body,
                exchange="",
                routing_key=queue,
                headers=task_message.headers,
                properties=task_message.properties,
                declare=[],
                retry_policy=None,
            )
        return queued
