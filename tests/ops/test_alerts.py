from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time

import pytest

from app.config import ConfigError
from app.ops import alerts
from app.ops.alerts import (
    FIRING,
    RESOLVED,
    AlertEvaluator,
    AlertThresholds,
    EmailHandler,
    SlackHandler,
    WebhookHandler,
    handlers_from_settings,
)
from app.ops.state import DeploymentState
from tests.ops.sinks import HttpSink, SmtpSink
from tests.stack import settings_of, wait_for

pytestmark = pytest.mark.any_redis

SLACK_SECRET_PATH = "/services/T000/B000/slack-secret-path"


class Recorder:
    name = "recorder"

    def __init__(self):
        self.events = []
        self.lock = threading.Lock()

    def send(self, event):
        with self.lock:
            self.events.append(event)


class Broken:
    name = "broken"

    def send(self, event):
        raise ConnectionError(f"cannot reach https://hooks.example{SLACK_SECRET_PATH}")


def state(**overrides) -> DeploymentState:
    values = dict(
        at=time.time(),
        queue_sizes={"inbound": 0, "send.high": 0},
        unacked=0,
        active_conversations=0,
        dead_letters=None,
        heartbeat_ages={"inbound": 1.0, "send.high": 1.0},
        window={},
        window_seconds=300,
    )
    values.update(overrides)
    return DeploymentState(**values)


FAILING_SENDS = {"sent": 10.0, "send_errors": 10.0}


def names(events, status=FIRING):
    return sorted(e.name for e in events if e.status == status)


def test_thresholds_have_the_documented_defaults_and_read_the_environment():
    defaults = AlertThresholds.from_settings(settings_of({}))
    assert (
        defaults.send_error_rate,
        defaults.processing_seconds,
        defaults.ai_response_seconds,
    ) == (0.05, 5.0, 5.0)
    assert (defaults.queue_size, defaults.signature_failures, defaults.cooldown_seconds) == (
        1000,
        10,
        900.0,
    )
    tuned = AlertThresholds.from_settings(
        settings_of({"ALERT_QUEUE_SIZE": "50", "ALERT_WORKER_QUEUES": "inbound, send.high"})
    )
    assert tuned.queue_size == 50 and tuned.worker_queues == ("inbound", "send.high")
    with pytest.raises(ConfigError, match="ALERT_SEND_ERROR_RATE"):
        settings_of({"ALERT_SEND_ERROR_RATE": "five percent"})
    with pytest.raises(ConfigError, match="ALERT_COOLDOWN_SECONDS"):
        settings_of({"ALERT_COOLDOWN_SECONDS": "-1"})


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, []),
        ({"window": FAILING_SENDS}, ["send_error_rate"]),
        ({"window": {"sent": 1.0, "send_errors": 1.0}}, []),  # too few attempts to judge
        ({"window": {"sent": 100.0, "send_errors": 5.0}}, []),  # 4.8% is under 5%
        ({"window": {"processing_sum": 60.0, "processing_count": 10.0}}, ["processing_time"]),
        ({"window": {"ai_sum": 60.0, "ai_count": 10.0}}, ["ai_response_time"]),
        ({"queue_sizes": {"inbound": 1001, "send.high": 3}}, ["queue_backlog"]),
        ({"queue_sizes": {"inbound": 1000, "send.high": 3}}, []),
        # A send lane in messages per number: 1,001 of one number fire, 600 each of two do not.
        ({"send_waiting": {("bulk", "106540352242922"): 1001}}, ["queue_backlog"]),
        (
            {
                "queue_sizes": {"inbound": 0, "send.bulk": 1200},
                "send_waiting": {("bulk", "1065403522429"): 600, ("bulk", "1065403522430"): 600},
            },
            [],
        ),
        ({"window": {"signature_failures": 11.0}}, ["signature_failures"]),
        ({"window": {"signature_failures": 10.0}}, []),
        ({"heartbeat_ages": {"inbound": 1.0, "send.high": 91.0}}, ["worker_heartbeat"]),
        ({"heartbeat_ages": {"inbound": 1.0, "send.high": None}}, ["worker_heartbeat"]),
    ],
)
def test_each_check_fires_past_its_threshold_only(redis_client, overrides, expected):
    recorder = Recorder()
    AlertEvaluator(redis_client, AlertThresholds(), [recorder]).evaluate(state(**overrides))
    assert names(recorder.events) == expected


def test_a_growing_dead_letter_store_fires_and_a_steady_one_recovers(redis_client):
    recorder = Recorder()
    evaluator = AlertEvaluator(redis_client, AlertThresholds(), [recorder])
    now = time.time()
    evaluator.evaluate(state(at=now - 60, dead_letters=3))
    assert names(recorder.events) == []
    evaluator.evaluate(state(at=now - 30, dead_letters=5))
    assert names(recorder.events) == ["dead_letters_growing"]
    assert "grew by 2 to 5" in recorder.events[0].summary
    evaluator.evaluate(state(at=now + 400, dead_letters=5))  # the window no longer holds the growth
    assert names(recorder.events, RESOLVED) == ["dead_letters_growing"]


def test_an_alert_is_sent_once_per_cooldown_and_its_recovery_once(redis_client):
    recorder = Recorder()
    thresholds = AlertThresholds(cooldown_seconds=1)
    evaluator = AlertEvaluator(redis_client, thresholds, [recorder], deployment="prod-eu")
    for _ in range(3):
        evaluator.evaluate(state(window=FAILING_SENDS))
    (first,) = recorder.events
    assert (first.name, first.level, first.status, first.deployment) == (
        "send_error_rate",
        "critical",
        FIRING,
        "prod-eu",
    )
    assert first.value == 0.5 and first.threshold == 0.05
    # Still failing once the cooldown has lapsed: sent again.
    wait_for(lambda: evaluator.evaluate(state(window=FAILING_SENDS)), timeout=5)
    assert [e.status for e in recorder.events] == [FIRING, FIRING]
    evaluator.evaluate(state())
    evaluator.evaluate(state())
    assert [e.status for e in recorder.events] == [FIRING, FIRING, RESOLVED]
    # A relapse after the recovery is news: no cooldown holds it back.
    evaluator.evaluate(state(window=FAILING_SENDS))
    assert [e.status for e in recorder.events] == [FIRING, FIRING, RESOLVED, FIRING]


def test_concurrent_evaluators_notify_once(redis_client):
    recorder = Recorder()
    evaluators = [AlertEvaluator(redis_client, AlertThresholds(), [recorder]) for _ in range(8)]
    barrier = threading.Barrier(len(evaluators))

    def run(evaluator, snapshot):
        barrier.wait()
        evaluator.evaluate(snapshot)

    for snapshot in (state(window=FAILING_SENDS), state()):
        threads = [threading.Thread(target=run, args=(e, snapshot)) for e in evaluators]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert [(e.name, e.status) for e in recorder.events] == [
        ("send_error_rate", FIRING),
        ("send_error_rate", RESOLVED),
    ]


def test_a_failing_handler_is_logged_and_the_others_still_deliver(redis_client, caplog):
    recorder = Recorder()
    evaluator = AlertEvaluator(redis_client, AlertThresholds(), [Broken(), recorder])
    with caplog.at_level(logging.ERROR, logger="app.ops.alerts"):
        (event,) = evaluator.evaluate(state(window=FAILING_SENDS))
    assert recorder.events == [event]
    assert (event.delivered, event.failed) == (["recorder"], ["broken"])
    assert "alert handler broken failed to deliver send_error_rate" in caplog.text
    (stored,) = alerts.AlertHistory(redis_client).recent()
    assert stored["delivered"] == ["recorder"] and stored["failed"] == ["broken"]
    assert alerts.AlertHistory(redis_client).firing()[0]["name"] == "send_error_rate"


def test_a_handler_error_never_logs_the_webhook_url(redis_client, caplog):
    sink = HttpSink(status=500)
    try:
        slack = SlackHandler(sink.url + SLACK_SECRET_PATH)
        dead = SlackHandler("http://127.0.0.1:1" + SLACK_SECRET_PATH)
        evaluator = AlertEvaluator(redis_client, AlertThresholds(), [slack, dead])
        with caplog.at_level(logging.ERROR):
            (event,) = evaluator.evaluate(state(window=FAILING_SENDS))
    finally:
        sink.close()
    assert event.failed == ["slack", "slack"]
    assert "HTTP 500" in caplog.text and "ConnectionError" in caplog.text
    assert "slack-secret-path" not in caplog.text


def test_slack_and_webhook_handlers_post_what_an_operator_reads(redis_client):
    sink = HttpSink()
    try:
        handlers = [
            SlackHandler(sink.url + "/slack"),
            WebhookHandler(sink.url + "/json", secret="hook-secret-123"),
        ]
        AlertEvaluator(redis_client, AlertThresholds(), handlers, deployment="prod-eu").evaluate(
            state(queue_sizes={"inbound": 5000, "send.high": 2})
        )
    finally:
        sink.close()
    slack, webhook = sink.received
    assert slack["path"].endswith("/slack")
    assert slack["json"]["text"].startswith(":rotating_light: *[prod-eu] WARNING Queue backlog*")
    assert "inbound=5000" in slack["json"]["text"]
    assert webhook["json"]["name"] == "queue_backlog" and webhook["json"]["status"] == "firing"
    expected = hmac.new(b"hook-secret-123", webhook["raw"], hashlib.sha256).hexdigest()
    assert webhook["headers"][alerts.WEBHOOK_SIGNATURE_HEADER] == f"sha256={expected}"


def test_email_handler_sends_through_smtp(redis_client):
    smtp = SmtpSink()
    try:
        handler = EmailHandler(
            "127.0.0.1",
            ["oncall@example.com", "ops@example.com"],
            port=smtp.port,
            sender="gw@example.com",
            security="none",
        )
        evaluator = AlertEvaluator(redis_client, AlertThresholds(), [handler], deployment="prod-eu")
        evaluator.evaluate(state(window={"signature_failures": 25.0}))
        evaluator.evaluate(state())
    finally:
        smtp.close()
    firing, resolved = smtp.messages
    assert firing["Subject"] == "[prod-eu] WARNING Webhook signature failures"
    assert firing["To"] == "oncall@example.com, ops@example.com"
    assert "25 webhooks with a bad signature" in firing.get_payload()
    assert resolved["Subject"] == "[prod-eu] RESOLVED Webhook signature failures"


def test_handlers_from_the_settings():
    assert handlers_from_settings(settings_of({})) == []
    configured = handlers_from_settings(
        settings_of(
            {
                "ALERT_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/x",
                "ALERT_WEBHOOK_URL": "https://ops.example/hook",
                "ALERT_EMAIL_TO": "oncall@example.com",
                "ALERT_SMTP_HOST": "smtp.example.com",
                "ALERT_SMTP_SECURITY": "ssl",
                "ALERT_SMTP_PORT": "465",
            }
        )
    )
    assert [h.name for h in configured] == ["slack", "webhook", "email"]
    assert configured[2].port == 465 and configured[2].security == "ssl"
    with pytest.raises(ConfigError, match="ALERT_SMTP_HOST"):
        settings_of({"ALERT_EMAIL_TO": "oncall@example.com"})
    with pytest.raises(ConfigError, match="ALERT_SMTP_SECURITY"):
        settings_of(
            {"ALERT_EMAIL_TO": "a@b.c", "ALERT_SMTP_HOST": "h", "ALERT_SMTP_SECURITY": "tls1"}
        )


def test_history_is_trimmed_and_newest_first(redis_client):
    history = alerts.AlertHistory(redis_client, size=3)
    for n in range(5):
        history.add(
            alerts.AlertEvent(f"a{n}", "warning", FIRING, "t", "s", None, None, float(n), "d")
        )
    assert [e["name"] for e in history.recent(10)] == ["a4", "a3", "a2"]
    assert json.loads(redis_client.lindex("wa:ops:alerts:history", 0))["at"] == 4.0
