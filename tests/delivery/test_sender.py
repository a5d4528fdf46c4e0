"""Sending one message against the simulator over real HTTP, with the session's Redis."""

from __future__ import annotations

import pytest

from app.credentials import NumberRegistry, SendingNumber, load_cipher
from app.delivery import dead_letters as dl
from app.delivery.dead_letters import DeadLetterStore
from app.delivery.messages import DEAD_LETTERED, QUEUED, READ, SENT, MessageStore
from app.delivery.ratelimit import SendRateLimiter
from app.delivery.retry import RetryPolicy
from app.delivery.sender import Sender, SendOutcome, send_recorded_message
from app.ops import metrics
from app.ops import window as w
from tests.stack import SECOND_NUMBER, SECOND_TOKEN, SimulatorThread

PAYLOAD = {
    "messaging_product": "whatsapp",
    "to": "573001234567",
    "type": "text",
    "text": {"body": "hi"},
}


@pytest.fixture
def sim():
    server = SimulatorThread()
    yield server
    server.close()


def make_sender(redis_client, client, **policy) -> Sender:
    return Sender(
        store=MessageStore(redis_client),
        dead_letters=DeadLetterStore(redis_client),
        client_for=lambda number: client,
        limiter=SendRateLimiter(redis_client, default_rate=1000, pair_interval=0),
        policy=RetryPolicy(max_deferral=30, **{"base_delay": 1, "max_delay": 8, **policy}),
        lock_ttl=30,
    )


@pytest.fixture
def sender(redis_client, sim):
    return make_sender(redis_client, sim.client(timeout=(1, 0.5)))


def queued(sender, message_id="m1", payload=PAYLOAD):
    sender.store.create(message_id, payload, "normal")
    return message_id


def test_sends_once_and_a_redelivered_task_does_not_send_again(sender, sim):
    queued(sender)
    assert send_recorded_message(sender, "m1").outcome == SendOutcome.SENT
    assert send_recorded_message(sender, "m1").outcome == SendOutcome.ALREADY_SENT
    assert len(sim.state.received) == 1
    record = sender.store.get("m1")
    assert record.status == SENT and record.wamid == sim.state.received[0]["wamid"]
    assert sender.store.id_for_wamid(record.wamid) == "m1"


def test_a_run_killed_after_recording_the_wamid_leaves_its_early_statuses_to_the_next(sender):
    queued(sender)
    sender.store.mark_sending("m1", 1)
    sender.store.id_for_wamid_or_hold("wamid.early", {"status": "read", "errors": []})
    sender.store.record_wamid("m1", "wamid.early")  # the run dies here, before applying it
    assert send_recorded_message(sender, "m1").outcome == SendOutcome.ALREADY_SENT
    assert sender.store.get("m1").status == READ


def test_permanent_error_is_dead_lettered_at_once(sender, sim):
    sim.state.faults.update({"error_codes": {"131026": 1.0}})
    queued(sender)
    result = send_recorded_message(sender, "m1")
    assert result.outcome == SendOutcome.DEAD_LETTERED and result.retry_in is None
    letter = sender.dead_letters.get("m1")
    assert (letter.reason, letter.code, letter.attempts) == (dl.PERMANENT_ERROR, 131026, 1)
    assert sender.store.get("m1").status == DEAD_LETTERED
    # A redelivered task finds it finished and does not try again.
    assert send_recorded_message(sender, "m1").outcome == SendOutcome.FINISHED
    assert sim.state.requests_seen == 1


def test_window_closed_from_meta_is_its_own_reason(sender, sim):
    sim.state.faults.update({"error_codes": {"131047": 1.0}})
    queued(sender)
    send_recorded_message(sender, "m1")
    assert sender.dead_letters.get("m1").reason == dl.WINDOW_CLOSED


def test_configuration_error_is_not_retried(redis_client, sim):
    sender = make_sender(redis_client, sim.client(access_token="EAAwrong-token-000000"))
    queued(sender)
    assert send_recorded_message(sender, "m1").outcome == SendOutcome.DEAD_LETTERED
    letter = sender.dead_letters.get("m1")
    assert (letter.reason, letter.code) == (dl.CONFIGURATION_ERROR, 190)
    assert "EAAwrong" not in str(letter.to_dict())


def test_transient_failures_back_off_until_the_budget_is_spent(redis_client, sim):
    sender = make_sender(redis_client, sim.client(), max_attempts=3)
    sim.state.faults.update({"error_rate": 1.0})
    queued(sender)
    first = send_recorded_message(sender, "m1")
    assert first.outcome == SendOutcome.RETRY and 0 <= first.retry_in <= 1
    record = sender.store.get("m1")
    assert (record.status, record.failures, record.error["code"]) == (QUEUED, 1, 1)
    assert record.history[-1]["retry_in"] == pytest.approx(first.retry_in, abs=0.001)
    assert send_recorded_message(sender, "m1").outcome == SendOutcome.RETRY
    assert send_recorded_message(sender, "m1").outcome == SendOutcome.DEAD_LETTERED
    letter = sender.dead_letters.get("m1")
    assert (letter.reason, letter.attempts) == (dl.RETRIES_EXHAUSTED, 3)


def test_a_timeout_is_transient(sender, sim):
    sim.state.faults.update({"timeout_rate": 1.0, "hang_seconds": 2})
    queued(sender)
    result = send_recorded_message(sender, "m1")
    assert result.outcome == SendOutcome.RETRY
    assert sender.store.get("m1").error["class"] == "GraphTimeoutError"


def test_throttling_honours_retry_after_and_spares_the_failure_budget(redis_client, sim):
    sender = make_sender(redis_client, sim.client(), max_attempts=1, max_throttled=3)
    sim.state.faults.update({"throttle_rate": 1.0, "retry_after": 4})
    queued(sender)
    for _ in range(2):
        result = send_recorded_message(sender, "m1")
        assert result.outcome == SendOutcome.RETRY and 4 <= result.retry_in <= 4.5
    record = sender.store.get("m1")
    assert (record.failures, record.throttles) == (0, 2)
    # Throttling clears: the message goes, although the failure budget was a single attempt.
    sim.state.faults.update({"throttle_rate": 0.0})
    assert send_recorded_message(sender, "m1").outcome == SendOutcome.SENT


def test_endless_throttling_is_dead_lettered_as_throttled(redis_client, sim):
    sender = make_sender(redis_client, sim.client(), max_throttled=2)
    sim.state.faults.update({"throttle_rate": 1.0, "retry_after": 1})
    queued(sender)
    send_recorded_message(sender, "m1")
    assert send_recorded_message(sender, "m1").outcome == SendOutcome.DEAD_LETTERED
    assert sender.dead_letters.get("m1").reason == dl.THROTTLED


def test_rate_limited_send_is_deferred_without_an_attempt(redis_client, sim):
    sender = make_sender(redis_client, sim.client())
    sender.limiter = SendRateLimiter(redis_client, default_rate=1, pair_interval=0)
    queued(sender, "m1")
    queued(sender, "m2")
    assert send_recorded_message(sender, "m1").outcome == SendOutcome.SENT
    result = send_recorded_message(sender, "m2")
    assert result.outcome == SendOutcome.RATE_LIMITED and 0.5 < result.retry_in <= 1.01
    record = sender.store.get("m2")
    assert (record.status, record.attempts) == (QUEUED, 0)
    assert len(sim.state.received) == 1


def test_a_second_delivery_waits_while_the_first_holds_the_lock(sender, sim):
    queued(sender)
    assert sender.store.lock_send("m1", "another-run", 20)
    result = send_recorded_message(sender, "m1")
    assert result.outcome == SendOutcome.LOCKED and 19 < result.retry_in <= 20
    assert sim.state.requests_seen == 0
    sender.store.unlock_send("m1", "another-run")
    assert send_recorded_message(sender, "m1").outcome == SendOutcome.SENT


def test_missing_record_sends_nothing(sender, sim):
    assert send_recorded_message(sender, "nope").outcome == SendOutcome.MISSING
    assert sim.state.requests_seen == 0


# --- Several sending numbers --------------------------------------------------------------------


def numbers_sender(redis_client, settings) -> Sender:
    """A sender choosing each message's client as the workers do."""
    from app.clients import client_for

    sender = make_sender(redis_client, None)
    sender.client_for = lambda number: client_for(settings, number)
    return sender


def test_a_message_from_a_second_number_goes_with_its_token_and_path(redis_client, second_number):
    second, settings = second_number
    sender = numbers_sender(redis_client, settings)
    sender.limiter = SendRateLimiter(redis_client, default_rate=1, pair_interval=0)
    sender.store.create("m1", PAYLOAD, "normal", phone_number_id=SECOND_NUMBER)
    sender.store.create("m2", PAYLOAD, "normal")  # the configured number's
    assert send_recorded_message(sender, "m1").outcome == SendOutcome.SENT
    assert [r["wamid"] for r in second.state.received] == [sender.store.get("m1").wamid]
    # Each number has its own bucket: the second number's use leaves the configured one's whole,
    # and the configured number's token (which that simulator refuses) goes with its message.
    assert send_recorded_message(sender, "m2").outcome == SendOutcome.DEAD_LETTERED
    assert sender.dead_letters.get("m2").code == 190
    assert len(second.state.received) == 1


def test_a_replaced_token_is_used_by_the_next_send(redis_client, second_number):
    second, settings = second_number
    sender = numbers_sender(redis_client, settings)
    registry = NumberRegistry(redis_client, load_cipher())
    registry.add(SendingNumber(SECOND_NUMBER), "EAAexpired-token-0123456789abcdef")
    for message_id in ("m1", "m2"):
        sender.store.create(message_id, PAYLOAD, "normal", phone_number_id=SECOND_NUMBER)
    assert send_recorded_message(sender, "m1").outcome == SendOutcome.DEAD_LETTERED
    assert sender.dead_letters.get("m1").reason == dl.CONFIGURATION_ERROR
    registry.add(SendingNumber(SECOND_NUMBER), SECOND_TOKEN)  # 'wa-gateway numbers add' again
    assert send_recorded_message(sender, "m2").outcome == SendOutcome.SENT
    assert len(second.state.received) == 1


def test_a_message_from_an_unregistered_number_is_dead_lettered_for_the_operator(
    redis_client, second_number
):
    second, settings = second_number
    sender = numbers_sender(redis_client, settings)
    NumberRegistry(redis_client, load_cipher()).remove(SECOND_NUMBER)
    sender.store.create("m1", PAYLOAD, "normal", phone_number_id=SECOND_NUMBER)
    assert send_recorded_message(sender, "m1").outcome == SendOutcome.DEAD_LETTERED
    letter = sender.dead_letters.get("m1")
    assert letter.reason == dl.CONFIGURATION_ERROR and SECOND_NUMBER in letter.error["message"]
    assert second.state.requests_seen == 0


def test_a_send_makes_four_round_trips_to_redis_and_leaves_its_lock_free(sender, sim, monkeypatch):
    """Each round trip is a wait and a few hundred microseconds of CPU, per message: the lock and
    the record, the rate limit, ``sending``, and the wamid with the lock's release, the event
    subscriptions' read and the alert window's counter."""
    import redis.connection

    round_trips = []
    send_packed = redis.connection.AbstractConnection.send_packed_command

    def counted(self, command, check_health=True):
        round_trips.append(command)
        return send_packed(self, command, check_health)

    # The alert window on the sender's own client, as in a worker (one client per process).
    monkeypatch.setattr(metrics, "_window", w.EventWindow(sender.store.redis))
    queued(sender)
    send_recorded_message(sender, "m1")  # the scripts loaded: count a steady send
    sender.store.create("m2", PAYLOAD, "bulk", customer="573001234567")  # as intake records it
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    assert send_recorded_message(sender, "m2").outcome == SendOutcome.SENT
    assert len(round_trips) == 4
    assert sender.store.lock_remaining("m2") == 0
    assert w.EventWindow(sender.store.redis).totals(60)[w.SENT] == 2  # every send still counted
