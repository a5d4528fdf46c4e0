"""Operations over the whole path as separate processes: a Redis of its own, the simulator, the
web app under gunicorn, Celery workers and two beats, sharing one multiprocess-metrics directory.

The tests run in order and share the stack: the flow, then the alert on a failing Graph API and
its recovery, then Redis stopping; the last one reads every log the gateway's processes wrote.
"""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field

import pytest
import requests
from celery import Celery
from prometheus_client.parser import text_string_to_metric_families

from tests.ops.sinks import HttpSink
from tests.stack import (
    BIN,
    TEST_CREDENTIALS,
    Process,
    RedisServer,
    free_port,
    gateway_env,
    signed_post,
    start_simulator,
    start_web,
    start_worker,
    text_webhook,
    wait_for,
)

API_KEY = "ops-test-api-key-0123456789"
COOLDOWN = 8
"""Seconds of alert cooldown for the test (15 minutes in production)."""
WINDOW = 20
"""Seconds of alert window for the test: errors age out of it, so recovery comes within it."""
CUSTOMER = "573001234567"
PRIVATE_TEXT = "Hola, my order code is zebra-4242"


@dataclass
class OpsStack:
    redis: RedisServer
    env: dict[str, str]
    simulator_url: str
    web_url: str
    sink: HttpSink
    processes: list[Process] = field(default_factory=list)

    def start(self, proc: Process) -> Process:
        self.processes.append(proc)
        return proc

    def scrape(self) -> dict[tuple[str, tuple], float]:
        text = requests.get(f"{self.web_url}/metrics", timeout=10).text
        samples = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return samples

    def sent(self) -> list[dict]:
        return requests.get(f"{self.simulator_url}/_sim/messages", timeout=5).json()["messages"]

    def say(self, text: str, wa_id: str = CUSTOMER) -> dict:
        return requests.post(
            f"{self.simulator_url}/_sim/customers/{wa_id}/messages",
            json={"text": text, "name": "Ana"},
            timeout=10,
        ).json()

    def alerts(self, name: str, status: str) -> list[dict]:
        return [b for b in self.sink.bodies() if b["name"] == name and b["status"] == status]

    def gateway_logs(self) -> str:
        return "\n".join(p.output() for p in self.processes if p.name != "simulator")


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def ops():
    redis_server = RedisServer().start()
    metrics_dir = tempfile.mkdtemp(prefix="wa-metrics-")
    sink = HttpSink()
    sim_port, web_port = free_port(), free_port()
    env = gateway_env(
        redis_server.url,
        f"http://127.0.0.1:{sim_port}",
        PROMETHEUS_MULTIPROC_DIR=metrics_dir,
        LOG_FORMAT="json",
        GATEWAY_API_KEYS=API_KEY,
        ALERT_WEBHOOK_URL=sink.url,
        ALERT_CHECK_INTERVAL="1",
        ALERT_COOLDOWN_SECONDS=str(COOLDOWN),
        ALERT_WINDOW_SECONDS=str(WINDOW),
        ALERT_MIN_SEND_ATTEMPTS="3",
        ALERT_WORKER_QUEUES="inbound,context,send.high,send.normal,alerts",
        ALERT_DEPLOYMENT_NAME="ops-test",
        SEND_MAX_ATTEMPTS="2",
        SEND_RETRY_BASE_DELAY="0.2",
        SEND_RETRY_MAX_DELAY="0.5",
    )
    stack = OpsStack(redis_server, env, f"http://127.0.0.1:{sim_port}", "", sink)
    try:
        stack.start(
            start_simulator(env, sim_port, f"http://127.0.0.1:{web_port}/webhooks/whatsapp")[0]
        )
        web, stack.web_url = start_web(env, web_port)
        stack.start(web)
        # send.bulk has no consumer here, so the queue-depth test can fill it.
        stack.start(start_worker(env, queues="inbound,context,send.high,send.normal"))
        yield stack
    finally:
        for proc in reversed(stack.processes):
            proc.stop()
        sink.close()
        redis_server.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def test_one_scrape_shows_the_flow_of_web_and_worker_processes(ops):
    said = ops.say(PRIVATE_TEXT)
    assert said["gateway_status"] == 200
    wait_for(
        lambda: [
            m for m in ops.sent() if m["body"].get("context", {}).get("message_id") == said["wamid"]
        ]
    )
    bad = signed_post(
        f"{ops.web_url}/webhooks/whatsapp", text_webhook(CUSTOMER, "x"), secret="wrong-secret-123"
    )
    assert bad.status_code == 401

    def settled():
        samples = ops.scrape()
        # The statuses (sent, delivered, read) come back as webhooks of their own.
        done = (
            value(samples, "whatsapp_message_processing_seconds_count", message_type="status") >= 3
        )
        return done and samples

    samples = wait_for(settled, timeout=30)
    # Counted in the worker processes ...
    assert value(samples, "whatsapp_messages_received_total", type="text") == 1
    assert value(samples, "whatsapp_messages_sent_total", type="text", status="sent") == 1
    assert value(samples, "whatsapp_message_processing_seconds_count", message_type="text") == 1
    assert value(samples, "whatsapp_message_processing_seconds_sum", message_type="text") > 0
    assert value(samples, "whatsapp_ai_response_seconds_count", ai_action_type="reply") == 1
    assert (
        value(samples, "whatsapp_ai_response_seconds_bucket", ai_action_type="reply", le="+Inf")
        == 1
    )
    # ... and in the web process, in the same scrape.
    assert value(samples, "whatsapp_webhook_signature_failures_total") == 1
    # State read from Redis at scrape time.
    assert value(samples, "whatsapp_redis_up") == 1
    assert value(samples, "whatsapp_active_conversations") == 1
    assert value(samples, "whatsapp_send_error_ratio") == 0
    assert 0 <= value(samples, "whatsapp_worker_heartbeat_age_seconds", queue="inbound") < 60
    assert ("whatsapp_worker_heartbeat_age_seconds", (("queue", "send.bulk"),)) not in samples
    # No label carries a phone number or a message id.
    labels = " ".join(str(key[1]) for key in samples)
    assert CUSTOMER not in labels and "wamid" not in labels


def test_queue_gauges_count_messages_a_batch_task_counts_its_messages(ops):
    publisher = Celery("publisher", set_as_current=False)  # the tests after this use their own
    publisher.config_from_object("celeryconfig")
    publisher.conf.broker_url = ops.redis.url
    for priority in (0, 0, 2, 4, 7, 9, 9):
        publisher.send_task(
            "outbound.send_message", args=["no-such-message"], queue="send.bulk", priority=priority
        )
    publisher.close()
    template = {"name": "order_update", "language": {"code": "es"}}
    messages = [
        {"to": f"5730055{i:05d}", "type": "template", "template": template, "priority": "bulk"}
        for i in range(120)
    ]
    response = requests.post(
        f"{ops.web_url}/v1/messages/batch",
        json={"messages": messages},
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    client = ops.redis.client()
    lists = [k for k in client.scan_iter("send.bulk*") if client.type(k) == "list"]
    tasks = sum(client.llen(k) for k in lists)
    assert tasks == 7 + 3 and len(lists) == 4  # 3 batch tasks, and kombu's four priority lists
    samples = ops.scrape()
    # Messages, not tasks: 120 in three batch tasks; a task whose message is gone counts none.
    assert value(samples, "whatsapp_message_queue_size", queue="send.bulk") == 120
    number = TEST_CREDENTIALS["WHATSAPP_PHONE_NUMBER_ID"]
    assert value(samples, "whatsapp_send_queue_messages", lane="bulk", phone_number_id=number) == 120
    assert value(samples, "whatsapp_message_queue_size", queue="inbound") == client.llen("inbound")


def test_error_rate_alert_reaches_the_sink_once_per_cooldown_and_recovers(ops):
    env = ops.env
    ops.start(start_worker(env, queues="alerts", concurrency=2, name="alerts"))
    celery = str(BIN / "celery")
    for n in (1, 2):  # a second beat by mistake: two evaluators, each every second
        beat = ops.start(
            Process(f"beat{n}", [celery, "-A", "workers", "beat", "--loglevel", "INFO"], env)
        )
        wait_for(lambda b=beat: "beat: Starting" in b.output(), timeout=30)
    faults = requests.put(f"{ops.simulator_url}/_sim/faults", json={"error_rate": 1.0}, timeout=5)
    assert faults.ok
    for n in range(3):
        ops.say(f"Hola {n}", wa_id=f"57300765432{n}")

    (first,) = wait_for(lambda: ops.alerts("send_error_rate", "firing"), timeout=60)
    assert first["level"] == "critical" and first["deployment"] == "ops-test"
    assert first["value"] > 0.05 and "Graph API send attempts failed" in first["summary"]
    # Both beats keep scheduling checks, twice a second in all; none sends it again meanwhile.
    time.sleep(max(0.0, first["at"] + COOLDOWN - 2 - time.time()))
    assert len(ops.alerts("send_error_rate", "firing")) == 1
    # The errors are still in the window when the cooldown lapses: it is sent once more.
    wait_for(lambda: len(ops.alerts("send_error_rate", "firing")) >= 2, timeout=COOLDOWN + 10)

    requests.put(f"{ops.simulator_url}/_sim/faults", json={"error_rate": 0.0}, timeout=5)
    (resolved,) = wait_for(lambda: ops.alerts("send_error_rate", "resolved"), timeout=WINDOW + 30)
    assert resolved["level"] == "critical"
    time.sleep(3)  # a duplicate from the other evaluator would arrive within a second or two
    firings = ops.alerts("send_error_rate", "firing")
    # One notification per cooldown while the errors stayed in the window, none after recovery.
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(firings)]
    assert len(firings) >= 2 and all(gap >= COOLDOWN - 0.5 for gap in gaps)
    assert firings[-1]["at"] < resolved["at"]
    assert len(ops.alerts("send_error_rate", "resolved")) == 1
    history = requests.get(
        f"{ops.web_url}/v1/alerts", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5
    ).json()["history"]
    mine = [(h["status"], h["delivered"]) for h in history if h["name"] == "send_error_rate"]
    assert mine == [("resolved", ["webhook"])] + [("firing", ["webhook"])] * len(firings)
    assert not ops.alerts("worker_heartbeat", "firing")


def test_readyz_is_503_while_redis_is_down(ops):
    assert requests.get(f"{ops.web_url}/readyz", timeout=10).status_code == 200
    ops.redis.stop()
    try:
        response = requests.get(f"{ops.web_url}/readyz", timeout=15)
        assert response.status_code == 503
        assert response.json()["checks"]["redis"].startswith("error")
        assert response.json()["checks"]["broker"].startswith("error")
        assert requests.get(f"{ops.web_url}/healthz", timeout=5).status_code == 200
    finally:
        ops.redis.start()
    wait_for(
        lambda: requests.get(f"{ops.web_url}/readyz", timeout=10).status_code == 200, timeout=30
    )


def test_logs_follow_a_message_and_hold_no_secret(ops):
    logs = ops.gateway_logs()
    for secret in (
        TEST_CREDENTIALS["WHATSAPP_ACCESS_TOKEN"],
        TEST_CREDENTIALS["WHATSAPP_WEBHOOK_SECRET"],
        TEST_CREDENTIALS["WHATSAPP_WEBHOOK_VERIFY_TOKEN"],
        API_KEY,
    ):
        assert secret not in logs
    assert CUSTOMER not in logs  # masked to its last four digits wherever it appears
    assert "zebra-4242" not in logs  # message bodies are for debug level only

    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    processed = [line for line in lines if line.get("reply_message_ids", "[]") != "[]"]
    inbound = processed[0]
    (reply_id,) = json.loads(inbound["reply_message_ids"])
    assert inbound["wamid"].startswith("wamid.") and inbound["task"] == "inbound.process_webhook"
    # The web process logged the inbound task it queued ...
    assert any(line.get("queued_task_id") == inbound["task_id"] for line in lines)
    # ... and the send of the reply carries the message id and the inbound task as its root.
    sends = [line for line in lines if line.get("message_id") == reply_id]
    assert sends and all(line["root_id"] == inbound["task_id"] for line in sends)
    assert any("accepted by Meta" in line["message"] for line in sends)


def test_metrics_dead_letters_and_error_answers_hold_no_secret(ops):
    auth = {"Authorization": f"Bearer {API_KEY}"}
    faults = {"error_rate": 0.0, "error_codes": {"131026": 1.0}}
    assert requests.put(f"{ops.simulator_url}/_sim/faults", json=faults, timeout=5).ok
    try:
        accepted = requests.post(
            f"{ops.web_url}/v1/messages",
            json={"to": CUSTOMER, "type": "text", "text": {"body": "hi"}},
            headers=auth,
            timeout=10,
        )
        assert accepted.status_code == 202, accepted.text
        letter_url = f"{ops.web_url}/v1/dead-letters/{accepted.json()['id']}"
        wait_for(lambda: requests.get(letter_url, headers=auth, timeout=5).ok, timeout=60)
    finally:
        requests.put(f"{ops.simulator_url}/_sim/faults", json={"error_codes": {}}, timeout=5)
    answers = [
        requests.get(f"{ops.web_url}/metrics", timeout=10).text,
        requests.get(letter_url, headers=auth, timeout=5).text,
        requests.get(
            f"{ops.web_url}/v1/messages/{accepted.json()['id']}", headers=auth, timeout=5
        ).text,
        requests.get(
            f"{ops.web_url}/v1/alerts", headers={"Authorization": f"Bearer {API_KEY}x"}, timeout=5
        ).text,
        requests.post(f"{ops.web_url}/v1/messages", json={"to": "1"}, headers=auth, timeout=5).text,
        requests.post(f"{ops.web_url}/webhooks/whatsapp", data=b"{}", timeout=5).text,
        requests.get(
            f"{ops.web_url}/webhooks/whatsapp",
            params={"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
            timeout=5,
        ).text,
    ]
    assert "131026" in answers[1]  # the dead letter is there, with Meta's error
    captured = "\n".join(answers) + ops.gateway_logs()
    for secret in (
        TEST_CREDENTIALS["WHATSAPP_ACCESS_TOKEN"],
        TEST_CREDENTIALS["WHATSAPP_WEBHOOK_SECRET"],
        TEST_CREDENTIALS["WHATSAPP_WEBHOOK_VERIFY_TOKEN"],
        API_KEY,
    ):
        assert secret not in captured
