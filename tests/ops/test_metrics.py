from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import redis
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.ops import metrics
from app.ops import window as w
from app.ops.activity import ActiveConversations
from app.ops.heartbeats import WorkerHeartbeats
from app.whatsapp import errors


@pytest.fixture
def shared_window(redis_client):
    metrics.use_window(w.EventWindow(redis_client))
    yield redis_client
    metrics.use_window(None)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(collector) -> dict:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    found = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def test_label_values_outside_their_set_become_other(shared_window):
    before = sample("whatsapp_messages_received_total", type="other")
    metrics.record_received("573001234567")  # never a phone number as a label
    metrics.record_received("TEXT")
    assert sample("whatsapp_messages_received_total", type="other") == before + 1
    assert metrics.bounded("Text", metrics.MESSAGE_TYPES) == "text"
    assert metrics.error_code_label(131026) == "131026"
    assert metrics.error_code_label(132015) == "132015"
    assert metrics.error_code_label(987654) == "other"
    assert metrics.error_code_label(None) == "none"
    assert metrics.task_label("outbound.send_message") == "outbound.send_message"
    assert metrics.task_label("Weird task 42") == "other"


def test_graph_errors_are_labelled_by_code_and_class(shared_window):
    exc = errors.GraphAPIError.from_response(400, {"error": {"code": 131047, "message": "x"}})
    before = sample("whatsapp_api_errors_total", error_code="131047", error_type="window_closed")
    metrics.record_graph_error(exc)
    assert (
        sample("whatsapp_api_errors_total", error_code="131047", error_type="window_closed")
        == before + 1
    )
    assert metrics.error_type_label(errors.GraphTimeoutError("t")) == "timeout"
    assert metrics.retry_reason(errors.ThrottledError("t")) == "throttled"
    assert metrics.retry_reason(errors.GraphConnectionError("c")) == "connection"


@pytest.mark.any_redis
def test_recording_feeds_the_shared_window_every_process_reads(shared_window):
    metrics.record_sent("text", "sent")
    metrics.record_sent("text", "failed")  # the outcome, not an attempt: errors count attempts
    metrics.record_api_error(1, "transient")
    metrics.observe_processing("text", 0.5)
    metrics.observe_ai_response("reply", 2.0)
    metrics.record_signature_failure()
    metrics.record_cache_lookup(hit=True)
    metrics.record_cache_lookup(hit=False)
    metrics.record_cache_lookup(hit=True)
    totals = w.EventWindow(shared_window).totals(60)
    assert totals == {
        w.SENT: 1.0,
        w.SEND_ERRORS: 1.0,
        w.PROCESSING_SUM: 0.5,
        w.PROCESSING_COUNT: 1.0,
        w.AI_SUM: 2.0,
        w.AI_COUNT: 1.0,
        w.SIGNATURE_FAILURES: 1.0,
        w.CACHE_HITS: 2.0,
        w.CACHE_MISSES: 1.0,
    }


def test_timed_responder_observes_even_a_failing_answer(shared_window):
    class Broken:
        def reply(self, inbound):
            raise RuntimeError("model unavailable")

    before = sample("whatsapp_ai_response_seconds_count", ai_action_type="classify")
    with pytest.raises(RuntimeError):
        metrics.TimedResponder(Broken(), action="classify").reply(object())
    assert sample("whatsapp_ai_response_seconds_count", ai_action_type="classify") == before + 1


@pytest.mark.any_redis
def test_state_gauges_come_from_redis_at_scrape_time(shared_window, monkeypatch):
    redis_client = shared_window
    redis_client.rpush("inbound", "a", "b")
    redis_client.rpush("inbound\x06\x169", "c")
    ActiveConversations(redis_client).touch("573001234567")
    ActiveConversations(redis_client).touch("573007654321")
    WorkerHeartbeats(redis_client).beat("inbound@host", ["inbound", "context"])
    metrics.record_cache_lookup(hit=True)
    metrics.record_cache_lookup(hit=False)
    metrics.record_sent("text", "sent")
    metrics.record_api_error(1, "transient")

    class DeadLetterStore:  # the delivery subsystem's store: only its size is read
        def __init__(self, client):
            self.client = client

        def __len__(self):
            return 4

    module = types.ModuleType("app.delivery.dead_letters")
    module.DeadLetterStore = DeadLetterStore
    monkeypatch.setitem(sys.modules, "app.delivery.dead_letters", module)
    collector = metrics.StateCollector(
        redis_client, ["inbound", "send.high"], alert_names=["send_error_rate"]
    )
    found = scrape(collector)
    assert found[("whatsapp_redis_up", ())] == 1
    assert found[("whatsapp_message_queue_size", (("queue", "inbound"),))] == 3
    assert found[("whatsapp_message_queue_size", (("queue", "send.high"),))] == 0
    assert found[("whatsapp_active_conversations", ())] == 2
    assert found[("whatsapp_cache_hit_rate", ())] == 0.5
    assert found[("whatsapp_send_error_ratio", ())] == 0.5
    assert found[("whatsapp_dead_letters", ())] == 4
    assert found[("whatsapp_alert_firing", (("alert", "send_error_rate"),))] == 0
    assert 0 <= found[("whatsapp_worker_heartbeat_age_seconds", (("queue", "inbound"),))] < 5
    assert ("whatsapp_worker_heartbeat_age_seconds", (("queue", "send.high"),)) not in found


def test_a_scrape_without_redis_says_so_instead_of_failing():
    dead = redis.Redis(port=1, socket_connect_timeout=0.2)
    found = scrape(metrics.StateCollector(dead, ["inbound"]))
    assert found == {("whatsapp_redis_up", ()): 0}


@pytest.mark.any_redis
def test_without_a_dead_letter_store_the_gauge_is_absent(redis_client, monkeypatch):
    monkeypatch.setitem(sys.modules, "app.delivery.dead_letters", None)  # import fails
    found = scrape(metrics.StateCollector(redis_client, ["inbound"]))
    assert not [key for key in found if key[0] == "whatsapp_dead_letters"]


def test_dead_processes_live_gauges_are_swept(tmp_path, monkeypatch):
    monkeypatch.setattr(metrics, "MULTIPROC_DIR", str(tmp_path))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for pid in (gone.pid, 1):
        (tmp_path / f"gauge_livesum_{pid}.db").write_bytes(b"")
    (tmp_path / f"counter_{gone.pid}.db").write_bytes(b"")
    assert metrics.sweep_dead_processes() == [gone.pid]
    remaining = sorted(p.name for p in tmp_path.iterdir())
    # Counters of a dead process still count; its live gauges no longer do.
    assert remaining == [f"counter_{gone.pid}.db", "gauge_livesum_1.db"]
    metrics.clean_multiproc_dir(str(tmp_path))
    assert list(tmp_path.iterdir()) == []


MULTIPROCESS_CHILD = """
import os, sys
from app.ops import metrics
metrics.MESSAGES_SENT.labels(type="text", status="sent").inc(int(sys.argv[1]))
metrics.TASKS_IN_PROGRESS.labels(task="outbound.send_message").inc()
if sys.argv[2] == "exit-cleanly":
    metrics.mark_process_dead(os.getpid())
"""

MULTIPROCESS_READER = """
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from app.ops import metrics

def scrape():
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry).decode()

print(scrape())
metrics.sweep_dead_processes()
print(scrape().replace("whatsapp_tasks_in_progress", "after_sweep_tasks_in_progress"))
"""


def run_python(code: str, *args: str, env: dict) -> str:
    root = str(Path(metrics.__file__).resolve().parents[2])
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def test_processes_sharing_a_directory_are_summed_in_one_scrape(tmp_path):
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": os.environ["PATH"]}
    run_python(MULTIPROCESS_CHILD, "2", "exit-cleanly", env=env)
    run_python(MULTIPROCESS_CHILD, "3", "killed-without-a-hook", env=env)
    text = run_python(MULTIPROCESS_READER, env=env)
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    # Counters of every process add up, whether it is alive or not ...
    assert found[("whatsapp_messages_sent_total", (("status", "sent"), ("type", "text")))] == 5
    # ... live gauges stop counting at a clean exit, or at the next scrape after a kill.
    running = (("task", "outbound.send_message"),)
    assert found[("whatsapp_tasks_in_progress", running)] == 1
    assert ("after_sweep_tasks_in_progress", running) not in found
