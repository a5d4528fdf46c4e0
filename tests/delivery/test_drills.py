"""Delivery drills with real processes: a Redis of their own, the web app under gunicorn, Celery
send and inbound workers, and the simulator over HTTP delivering signed status webhooks.

Each drill counts what a user would count: messages lost (neither ``read`` nor dead-lettered),
messages the simulator received more than once, and the reasons of the dead letters. The counts
are printed (run with ``-s`` to see them) as ``DRILL <name>: {...}``. The stack and the counting
are those of the command-line drills (``drills/harness.py``), at a scale that fits a test run.
"""

from __future__ import annotations

import collections
import os
import signal
from collections.abc import Iterator

import pytest
import requests

from app.delivery import dead_letters as dl
from app.delivery.dead_letters import DeadLetterStore
from app.delivery.messages import DEAD_LETTERED, READ, MessageStore
from drills.harness import (
    API_KEY,
    EXPECTED_REASONS,
    MIXED_FAULTS,
    NUMBER,
    Drill,
    drill_stack,
    recipients,
    report,
    template_to,
)
from tests.stack import child_pids, wait_for


@pytest.fixture(scope="module")
def stack() -> Iterator[Drill]:
    # The drills' outcomes at a test's scale; they assert no timings, so the simulator answers at
    # once rather than at Meta's speed (python -m drills runs them with it).
    with drill_stack(latency_ms=0) as drill:
        yield drill


@pytest.fixture
def drill(stack: Drill) -> Iterator[Drill]:
    stack.faults()
    stack.forget_received()
    yield stack
    stack.stop_workers()
    stack.faults()


def test_500_messages_with_30_percent_failures_end_read_or_dead_lettered(drill):
    to = recipients(1, 500)
    drill.faults(**MIXED_FAULTS)
    drill.worker()
    ids = drill.submit(to, priority="bulk")
    statuses = drill.wait_final(ids, timeout=100)

    store = MessageStore(drill.redis.client())
    counts = drill.count(to)
    dead = {i: store.get(i) for i, s in statuses.items() if s == DEAD_LETTERED}
    read = [i for i, s in statuses.items() if s == READ]
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    report(
        "faults",
        messages=len(ids),
        read=len(read),
        dead_lettered=len(dead),
        reasons=collections.Counter(r.dead_letter_reason for r in dead.values()),
        lost=len(ids) - len(read) - len(dead),
        duplicated=duplicated,
        requests=drill.simulator_record()["requests"],
    )
    assert len(read) + len(dead) == 500  # none lost
    assert duplicated == 0
    assert read and dead  # the faults did bite, and most messages still went
    dead_letters = DeadLetterStore(drill.redis.client())
    for message_id, record in dead.items():
        letter = dead_letters.get(message_id)
        assert letter is not None, f"{message_id} is dead_lettered but not in the store"
        if letter.reason == dl.RETRIES_EXHAUSTED:  # possible, if very unlikely, at 30%
            assert record.failures == 8
        else:
            assert letter.reason == EXPECTED_REASONS[letter.code], letter.to_dict()
        assert counts[record.to] == 0  # Meta refused it: nothing was delivered
    for message_id in read:
        record = store.get(message_id)
        assert counts[record.to] == 1
        assert record.attempts >= 1

    # Replay the window_closed ones once the customers are reachable: same ids, delivered once.
    drill.faults()
    closed = [i for i, r in dead.items() if r.dead_letter_reason == dl.WINDOW_CLOSED]
    response = drill.post("/v1/dead-letters/replay", {"reason": "window_closed"})
    assert response.status_code == 202 and sorted(response.json()["replayed"]) == sorted(closed)
    after = drill.wait_final(closed, timeout=60)
    assert set(after.values()) <= {READ}
    for message_id in closed:
        record = store.get(message_id)
        assert record.attempts == 1 and record.history[-1]["status"] == READ
        assert drill.count([record.to])[record.to] == 1


def test_send_worker_killed_with_sigkill_loses_nothing(drill):
    to = recipients(2, 500)
    drill.faults(latency_ms=15, latency_jitter_ms=10)  # keep sends in flight
    worker = drill.worker()
    ids = drill.submit(to)
    wait_for(lambda: sum(drill.count(to).values()) >= 100, timeout=60, interval=0.2)
    in_flight = sum(1 for s in drill.statuses(ids).values() if s == "sending")
    drill.kill(worker)
    sent_at_kill = sum(drill.count(to).values())
    drill.worker()
    statuses = drill.wait_final(ids, timeout=90)
    counts = drill.count(to)
    lost = sum(1 for s in statuses.values() if s != READ)
    recovered = drill.recovered_by_sweep()
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    report(
        "sigkill",
        messages=len(ids),
        sent_before_kill=sent_at_kill,
        sending_at_kill=in_flight,
        lost=lost,
        duplicated=duplicated,
        recovered_by_sweep=recovered,
        never_received=sum(1 for t in to if counts[t] == 0),
    )
    assert 0 < sent_at_kill < 500  # the kill really happened mid-flight
    assert lost == 0
    assert all(counts[t] >= 1 for t in to)
    # A duplicate is only possible for a send killed between Meta's answer and the wamid record.
    assert duplicated <= 4


def test_two_workers_share_one_rate_limit(drill):
    to = recipients(3, 200)
    limit = 20
    env = {"SEND_RATE_LIMITS": f"{NUMBER}={limit}"}
    drill.worker(concurrency=2, **env)
    drill.worker(concurrency=2, **env)
    ids = drill.submit(to)
    drill.wait_final(ids, timeout=90)
    arrivals = sorted(m["at"] for m in drill.received() if m["body"]["to"] in set(to))
    busiest = max(sum(1 for a in arrivals if s <= a < s + 1.0) for s in arrivals)
    burst = max(1, round(limit * 0.1))
    report(
        "ratelimit",
        messages=len(arrivals),
        limit=limit,
        burst=burst,
        busiest_second=busiest,
        seconds=round(arrivals[-1] - arrivals[0], 2),
    )
    assert len(arrivals) == 200
    assert busiest <= limit + burst
    assert arrivals[-1] - arrivals[0] >= (200 - burst) / limit - 1  # it was paced, not dumped


def test_a_high_send_overtakes_a_bulk_backlog_against_a_slow_graph_api(drill):
    # Meta answers in about 200 ms here; the workers are the Procfile's two send processes.
    drill.faults(latency_ms=200, latency_jitter_ms=300, latency_distribution="lognormal")
    env = {"SEND_RATE_LIMITS": f"{NUMBER}=20"}  # 200 bulk messages: ten seconds of backlog
    drill.worker(concurrency=2, **env)
    drill.worker(queues="send.high", concurrency=4, pool="threads", **env)
    bulk = recipients(5, 200)
    bulk_ids = drill.submit(bulk, priority="bulk")
    wait_for(lambda: sum(drill.count(bulk).values()) >= 10, timeout=60)  # the campaign is sending
    reply = recipients(6, 1)
    reply_ids = drill.submit(reply, priority="high")
    wait_for(lambda: drill.count(reply)[reply[0]] == 1, timeout=60)
    bulk_sent_before_reply = sum(drill.count(bulk).values())
    report("overtake", bulk=len(bulk), bulk_sent_before_the_reply=bulk_sent_before_reply)
    assert bulk_sent_before_reply < len(bulk) / 2  # the reply did not wait for the campaign
    statuses = drill.wait_final(bulk_ids + reply_ids, timeout=120)
    assert all(status == READ for status in statuses.values())


def test_poison_message_is_dead_lettered_after_bounded_redeliveries(drill):
    drill.faults(timeout_rate=1.0, hang_seconds=3600)  # every send hangs until killed
    worker = drill.worker(concurrency=1, GRAPH_READ_TIMEOUT="30", TASK_MAX_REDELIVERIES="2")
    (message_id,) = drill.submit(recipients(4, 1))
    store = MessageStore(drill.redis.client())
    kills = 0
    for attempt in range(1, 4):
        # The send is under way (it will hang): kill the pool process running it.
        wait_for(
            lambda a=attempt: (r := store.get(message_id)).attempts == a and r.status == "sending",
            timeout=30,
            interval=0.05,
        )
        (child,) = child_pids(worker.pid)
        os.kill(child, signal.SIGKILL)
        kills += 1
    record = wait_for(
        lambda: (r := store.get(message_id)).status == DEAD_LETTERED and r, timeout=40
    )
    letter = DeadLetterStore(drill.redis.client()).get(message_id)
    report("poison", kills=kills, attempts=record.attempts, reason=letter.reason)
    assert letter.reason == dl.POISON
    assert record.attempts == kills  # not run again after the last redelivery
    assert "WorkerLostError" in worker.output() or "signal 9" in worker.output()


def test_idempotent_repeat_over_http_sends_once(drill):
    drill.worker(concurrency=2)
    to = recipients(5, 1)[0]
    first = drill.post("/v1/messages", template_to(to), **{"Idempotency-Key": "drill-order-1"})
    again = drill.post("/v1/messages", template_to(to), **{"Idempotency-Key": "drill-order-1"})
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    drill.wait_final([first.json()["id"]], timeout=30)
    assert drill.count([to])[to] == 1
    other = drill.post(
        "/v1/messages", template_to(to, "high"), **{"Idempotency-Key": "drill-order-1"}
    )
    assert other.status_code == 409


def test_a_customer_who_writes_opens_the_window_for_free_form_replies(drill):
    drill.worker(concurrency=2)
    customer = recipients(6, 1)[0]
    text = {"to": customer, "type": "text", "text": {"body": "Your order is ready"}}
    refused = drill.post("/v1/messages", text)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "window_closed"
    said = requests.post(
        f"{drill.simulator_url}/_sim/customers/{customer}/messages",
        json={"text": "¿Está listo mi pedido?"},
        timeout=10,
    ).json()
    assert said["gateway_status"] == 200
    accepted = wait_for(
        lambda: (
            (r := drill.post("/v1/messages", {**text, "priority": "high"})).status_code == 202 and r
        ),
        timeout=30,
        interval=0.3,
    )
    message_id = accepted.json()["id"]
    drill.wait_final([message_id], timeout=30)
    response = requests.get(
        f"{drill.web_url}/v1/messages/{message_id}",
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=10,
    ).json()
    assert response["status"] == READ and response["wamid"].startswith("wamid.")
    assert [h["status"] for h in response["history"] if not h.get("ignored")][-3:] == [
        "sent",
        "delivered",
        "read",
    ]


def test_a_redis_master_killed_mid_flood_loses_nothing_acknowledged():
    """The failover drill at CI scale: the master SIGKILLed during webhooks and sends, with
    ``REDIS_MIN_REPLICAS=1``; the full 5,000 + 5,000 run is in docs/RELIABILITY.md."""
    from drills import redis_failover

    result = redis_failover.run(
        redis_failover.parser().parse_args(["--webhooks", "150", "--sends", "150", "--rate", "30"])
    )
    report("redis_failover", **result)
    assert result["webhooks_accepted"] == 150 and result["sends_accepted"] == 150
    assert result["lost"] == 0
    # The goal is 0; one window is still open (docs/RELIABILITY.md, "Redis Sentinel"): a batch
    # request sent from the old master whose client, refused, repeats it on the new one. It
    # duplicates at most the messages of the requests in flight at the kill.
    assert result["duplicated"] <= 50
    assert result["sends_resumed_after_s"] is not None
