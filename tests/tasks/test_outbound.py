"""Send tasks on the broker: which tasks the API's messages become, and what a batch does with
each of its messages (sent, retried alone, handed on when rate-limited, split when poison)."""

from __future__ import annotations

import threading
import time

import pytest

import celeryconfig
from app import keys
from app.config import get_settings
from app.delivery.messages import DEAD_LETTERED, QUEUED, SENT, MessageStore
from app.whatsapp.client import reset_clients
from tasks import outbound
from tasks.enqueue import enqueue_sends
from tasks.outbound import send_batch
from tests.stack import TEST_CREDENTIALS, SimulatorThread, queued_tasks
from tests.tasks.test_base import run_as_worker

NUMBER = TEST_CREDENTIALS["WHATSAPP_PHONE_NUMBER_ID"]


def template_to(to: str) -> dict:
    return {
        "messaging_product": "whatsapp",
        "to": to,
        "type": "template",
        "template": {"name": "order_update", "language": {"code": "es"}},
    }


@pytest.fixture
def graph(redis_client, monkeypatch):
    """The simulator as the Graph API of this process's send tasks."""
    sim = SimulatorThread()
    monkeypatch.setenv("WHATSAPP_API_BASE_URL", sim.url)
    monkeypatch.setenv("SEND_RATE_LIMITS", f"{NUMBER}=1000")  # no limit but where a test sets one
    get_settings.cache_clear()
    reset_clients()
    outbound._limiters.clear()
    yield sim
    get_settings.cache_clear()
    reset_clients()
    outbound._limiters.clear()
    sim.close()


def recorded(redis_client, n: int, prefix: str = "m") -> list[str]:
    store = MessageStore(redis_client)
    ids = [f"{prefix}{i}" for i in range(n)]
    for i, message_id in enumerate(ids):
        store.create(message_id, template_to(f"5730012{i:05d}"), "bulk")
    return ids


def test_batched_lanes_go_many_to_a_task_and_replies_one_to_a_task(redis_client):
    size = celeryconfig.SEND_BATCH_SIZE
    bulk = [(f"b{i}", "bulk") for i in range(2 * size + 3)]
    high = [(f"h{i}", "high") for i in range(3)]
    enqueue_sends(bulk[:size] + high + bulk[size:])
    batches = queued_tasks(redis_client, "send.bulk")
    assert [name for name, _, _ in batches] == ["outbound.send_batch"] * 3
    assert [args for _, args, _ in batches] == [
        [[i for i, _ in bulk[:size]], "bulk"],
        [[i for i, _ in bulk[size : 2 * size]], "bulk"],
        [[i for i, _ in bulk[2 * size :]], "bulk"],
    ]
    assert queued_tasks(redis_client, "send.high") == [
        ("outbound.send_message", [f"h{i}"], None) for i in range(3)
    ]
    # A lone message on a batched lane is a task of its own, as is everything with batch_size 1.
    enqueue_sends([("n0", "normal")])
    enqueue_sends([("n1", "normal"), ("n2", "normal")], batch_size=1)
    assert [(n, a) for n, a, _ in queued_tasks(redis_client, "send.normal")] == [
        ("outbound.send_message", ["n0"]),
        ("outbound.send_message", ["n1"]),
        ("outbound.send_message", ["n2"]),
    ]


def test_a_batch_sends_each_message_and_records_each_wamid(redis_client, graph):
    ids = recorded(redis_client, 5)
    outcome = run_as_worker(send_batch, "batch-1", ids, "bulk")
    assert outcome == {"sent": 5}
    store = MessageStore(redis_client)
    records = [store.get(i) for i in ids]
    assert all(r.status == SENT and r.wamid and r.attempts == 1 for r in records)
    assert sorted(m["body"]["to"] for m in graph.state.received) == sorted(r.to for r in records)
    assert not redis_client.zrange(keys.SEND_PENDING, 0, -1)  # none is expected to run again
    # Delivered again (a worker died before acknowledging it): nothing is sent twice.
    assert run_as_worker(send_batch, "batch-1", ids, "bulk") == {"already_sent": 5}
    assert len(graph.state.received) == 5


def test_a_message_that_fails_is_dead_lettered_or_retried_alone(redis_client, graph):
    ids = recorded(redis_client, 4)
    store = MessageStore(redis_client)
    graph.config.not_on_whatsapp = {store.get(ids[1]).to}  # 131026: permanent
    outcome = run_as_worker(send_batch, "batch-2", ids, "bulk")
    assert outcome == {"sent": 3, "dead_lettered": 1}
    assert store.get(ids[1]).status == DEAD_LETTERED
    # A passing failure: the message goes on as a task of its own, with its backoff.
    more = recorded(redis_client, 3, prefix="r")
    graph.state.faults.update({"error_rate": 1.0})
    assert run_as_worker(send_batch, "batch-3", more, "bulk") == {"retry": 3}
    retries = queued_tasks(redis_client, "send.bulk")
    assert [(name, args) for name, args, _ in retries] == [
        ("outbound.send_message", [message_id]) for message_id in more
    ]
    assert all(eta for _, _, eta in retries)
    assert all(store.get(i).status == QUEUED and store.get(i).failures == 1 for i in more)


def test_when_the_rate_limit_bites_the_rest_goes_on_as_one_batch(redis_client, graph, monkeypatch):
    monkeypatch.setenv("SEND_RATE_LIMITS", f"{NUMBER}=0.4")  # one message, then 2.5 s to wait
    ids = recorded(redis_client, 5)
    before = time.time()
    outcome = run_as_worker(send_batch, "batch-4", ids, "bulk")
    assert outcome == {"sent": 1, "rate_limited": 1, "handed_on": 3}
    ((name, args, eta),) = queued_tasks(redis_client, "send.bulk")
    assert (name, args) == ("outbound.send_batch", [ids[1:], "bulk"])
    assert eta is not None
    # The sweep for lost sends knows when each of them is due again.
    due = dict(redis_client.zrange(keys.SEND_PENDING, 0, -1, withscores=True))
    assert set(due) == set(ids[1:]) and all(at > before + 0.5 for at in due.values())


def test_a_batch_keeps_several_sends_in_flight_against_a_slow_graph_api(redis_client, graph):
    # A slow answer must not hold the next message back: 80 messages/s at 300 ms a call
    # need 24 in flight per number.
    graph.state.faults.update({"latency_ms": 1000})
    ids = recorded(redis_client, celeryconfig.SEND_BATCH_CONCURRENCY)
    assert run_as_worker(send_batch, "batch-7", ids, "bulk") == {"sent": len(ids)}
    arrivals = sorted(m["at"] for m in graph.state.received)
    # Every message reached the API before the first answer came back.
    assert arrivals[-1] - arrivals[0] < 1.0
    store = MessageStore(redis_client)
    assert all(store.get(i).status == SENT and store.get(i).wamid for i in ids)


def test_batches_make_their_calls_on_threads_kept_from_one_batch_to_the_next(
    redis_client, graph
):
    def call_threads() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name.startswith("send")}

    ids = recorded(redis_client, 2 * celeryconfig.SEND_BATCH_CONCURRENCY)
    half = celeryconfig.SEND_BATCH_CONCURRENCY
    assert run_as_worker(send_batch, "batch-9", ids[:half], "bulk") == {"sent": half}
    kept = call_threads()
    assert 0 < len(kept) <= celeryconfig.SEND_BATCH_CONCURRENCY
    assert run_as_worker(send_batch, "batch-10", ids[half:], "bulk") == {"sent": half}
    assert call_threads() == kept

def test_a_batch_waits_in_place_for_a_near_turn(redis_client, graph, monkeypatch):
    monkeypatch.setenv("SEND_RATE_LIMITS", f"{NUMBER}=20")  # 50 ms apart, past a burst of 2
    ids = recorded(redis_client, 6)
    outcome = run_as_worker(send_batch, "batch-8", ids, "bulk")
    assert outcome == {"sent": 6}
    assert queued_tasks(redis_client, "send.bulk") == []


def test_a_batch_past_its_time_budget_hands_its_rest_to_a_new_batch(
    redis_client, graph, monkeypatch
):
    monkeypatch.setattr(celeryconfig, "SEND_BATCH_TIME_BUDGET", 0.0)
    ids = recorded(redis_client, 4)
    assert run_as_worker(send_batch, "batch-5", ids, "bulk") == {"sent": 1, "handed_on": 3}
    assert [(n, a) for n, a, _ in queued_tasks(redis_client, "send.bulk")] == [
        ("outbound.send_batch", [ids[1:], "bulk"])
    ]


def test_a_batch_that_killed_its_worker_is_split_into_tasks_of_one(redis_client, graph):
    ids = recorded(redis_client, 4)
    MessageStore(redis_client).record_wamid(ids[0], "wamid.sent-before-the-crash")
    # The run before this one started and never finished: its worker died.
    redis_client.set(keys.TASK_UNFINISHED.format(task_id="batch-6"), 1)
    assert run_as_worker(send_batch, "batch-6", ids, "bulk") == "split"
    assert queued_tasks(redis_client, "send.bulk") == [
        ("outbound.send_message", [message_id], None) for message_id in ids[1:]
    ]
    assert not graph.state.received  # nothing was sent by the split itself
