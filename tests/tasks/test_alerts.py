from __future__ import annotations

import celeryconfig
import workers
from app.ops.heartbeats import WorkerHeartbeats
from tasks import alerts as alert_tasks
from tasks.alerts import evaluate_alerts
from tests.ops.sinks import HttpSink


def test_beat_runs_the_checks_every_30_seconds_on_the_alerts_queue():
    entry = celeryconfig.beat_schedule["alert-checks"]
    assert entry["task"] == "alerts.evaluate" and entry["task"] in workers.app.tasks
    assert entry["schedule"] == 30 and entry["options"]["queue"] == "alerts"
    assert workers.app.amqp.router.route({}, "alerts.evaluate")["queue"].name == "alerts"


def test_the_task_reads_the_deployment_and_notifies_the_configured_handlers(
    redis_client, monkeypatch
):
    sink = HttpSink()
    monkeypatch.setenv("ALERT_WEBHOOK_URL", sink.url)
    monkeypatch.setenv("ALERT_WORKER_QUEUES", "inbound")
    alert_tasks._handlers.cache_clear()
    try:
        WorkerHeartbeats(redis_client).beat("inbound@host", ["inbound"])
        # A task queue counts its tasks, priority sub-lists included (a send lane, its messages).
        redis_client.rpush("inbound\x06\x169", *["task"] * 1001)
        assert evaluate_alerts() == {"sent": ["queue_backlog:firing"]}
        assert evaluate_alerts() == {"sent": []}
        redis_client.delete("inbound\x06\x169")
        assert evaluate_alerts() == {"sent": ["queue_backlog:resolved"]}
    finally:
        alert_tasks._handlers.cache_clear()
        sink.close()
    assert [(b["name"], b["status"]) for b in sink.bodies()] == [
        ("queue_backlog", "firing"),
        ("queue_backlog", "resolved"),
    ]
