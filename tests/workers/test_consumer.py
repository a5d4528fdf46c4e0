"""Messages written straight into a queue in anything but JSON are refused, recorded, never run;
a task settled after its broker connection was lost does not take the worker down."""

from __future__ import annotations

import base64
import json
import logging
import os
import uuid

import pytest
from kombu import Connection

from app.rejected import RejectedMessageLog
from tests.stack import RedisServer, gateway_env, start_worker, text_webhook, wait_for
from workers.consumer import despite_lost_client


def raw_task_message(task: str, body: bytes, content_type: str, queue: str = "inbound") -> str:
    """A task message as kombu's Redis transport stores it, with any body and content type."""
    task_id = str(uuid.uuid4())
    return json.dumps(
        {
            "body": base64.b64encode(body).decode(),
            "content-encoding": "binary",
            "content-type": content_type,
            "headers": {
                "lang": "py",
                "task": task,
                "id": task_id,
                "root_id": task_id,
                "parent_id": None,
                "group": None,
                "retries": 0,
                "eta": None,
                "expires": None,
                "timelimit": [None, None],
                "argsrepr": "()",
                "kwargsrepr": "{}",
            },
            "properties": {
                "correlation_id": task_id,
                "reply_to": "",
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
    )


@pytest.fixture(scope="module")
def worker_stack():
    server = RedisServer().start()
    worker = start_worker(gateway_env(server.url, "http://127.0.0.1:9"), queues="inbound")
    yield server, worker
    worker.stop()
    server.close()


def test_pickle_payload_is_refused_recorded_and_never_executed(worker_stack, tmp_path):
    server, worker = worker_stack
    marker = tmp_path / "executed"
    # Protocol-0 pickle that would run a shell command if it were ever unpickled.
    evil = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    client = server.client()
    client.lpush(
        "inbound",
        raw_task_message("inbound.process_webhook", evil, "application/x-python-serialize"),
    )
    rejected = RejectedMessageLog(client)
    wait_for(lambda: len(rejected) >= 1)
    entry = rejected.entries()[0]
    assert entry["content_type"] == "application/x-python-serialize"
    assert entry["task"] == "inbound.process_webhook" and entry["queue"] == "inbound"
    assert not marker.exists()
    assert client.llen("inbound") == 0 and client.hlen("unacked") == 0


@pytest.mark.parametrize(
    ("task", "body", "content_type", "reason"),
    [
        ("inbound.process_webhook", b"\x80\x04K\x01.", "application/x-python-serialize", "invalid"),
        (
            "inbound.process_webhook",
            b"!!python/object/apply:os.system ['true']",
            "application/x-yaml",
            "invalid",
        ),
        (
            "inbound.nonexistent",
            json.dumps([[{}], {}, {}]).encode(),
            "application/json",
            "unknown task",
        ),
    ],
)
def test_other_refusals_are_recorded(worker_stack, task, body, content_type, reason):
    server, _ = worker_stack
    client = server.client()
    rejected = RejectedMessageLog(client)
    before = len(rejected)
    client.lpush("inbound", raw_task_message(task, body, content_type))
    wait_for(lambda: len(rejected) > before)
    assert rejected.entries()[0]["reason"].startswith(reason)


def test_a_json_task_after_the_garbage_still_runs(worker_stack):
    server, worker = worker_stack
    client = server.client()
    body = json.dumps([[text_webhook("573001234567", "Hola")], {}, {}]).encode()
    client.lpush("inbound", raw_task_message("inbound.process_webhook", body, "application/json"))
    wait_for(
        lambda: "inbound.process_webhook" in worker.output() and "succeeded" in worker.output()
    )


def test_a_task_settled_after_its_broker_connection_was_released_does_not_kill_the_worker(
    redis_client, caplog
):
    connection = Connection(os.environ["REDIS_URL"])
    queue = connection.SimpleQueue("consumer-test")
    queue.put({"n": 1})
    message = queue.get(timeout=5)
    # What a connection lost while the task ran leaves behind: its pools dropped, its client
    # released by kombu before the worker gets round to requeueing the task.
    message.channel._disconnect_pools()
    transport, client = message.channel.connection, message.channel.connection.client
    transport.client = None
    reject = message.reject_log_error
    with pytest.raises(AttributeError):
        reject(logging.getLogger("test"), (ConnectionError,), requeue=True)
    despite_lost_client(reject)(logging.getLogger("test"), (ConnectionError,), requeue=True)
    assert "left unacknowledged" in caplog.text
    # Still unacknowledged in Redis: the visibility timeout brings it back.
    assert redis_client.hexists("unacked", message.delivery_tag)
    transport.client = client
    connection.close()


def test_other_attribute_errors_still_surface():
    class Defective:
        channel = None

        def ack_log_error(self, *args):
            raise AttributeError("a defect")

    with pytest.raises(AttributeError, match="a defect"):
        despite_lost_client(Defective().ack_log_error)()
