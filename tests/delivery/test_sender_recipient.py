"""Sending to a customer named by business-scoped user id: the pair rate limit is the customer's,
whichever id a message names them by."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.conversations.customers import CustomerBook, Identity
from app.delivery.dead_letters import DeadLetterStore
from app.delivery.messages import MessageStore
from app.delivery.ratelimit import SendRateLimiter
from app.delivery.retry import RetryPolicy
from app.delivery.sender import Sender, SendOutcome, send_recorded_message
from app.whatsapp.client import SendResult

NUMBER = "106540352242922"
PHONE = "573001234567"
USER_ID = "CO.13491208655302741918"


@dataclass
class RecordingClient:
    """Stands in for the Graph client: keeps what it was asked to send."""

    phone_number_id: str = NUMBER
    sent: list[dict] = field(default_factory=list)

    def send_message(self, message: dict) -> SendResult:
        self.sent.append(message)
        return SendResult(f"wamid.{len(self.sent)}", None, None, {}, user_id=USER_ID)


def test_the_pair_limit_is_shared_by_the_phone_and_the_bsuid_of_one_customer(redis_client):
    CustomerBook(redis_client).learn(NUMBER, Identity(PHONE, USER_ID))
    client = RecordingClient()
    sender = Sender(
        store=MessageStore(redis_client),
        dead_letters=DeadLetterStore(redis_client),
        client_for=lambda number: client,
        limiter=SendRateLimiter(redis_client, default_rate=1000, pair_interval=60, pair_burst=1),
        policy=RetryPolicy(max_deferral=30),
        lock_ttl=30,
    )
    text = {"messaging_product": "whatsapp", "type": "text", "text": {"body": "hi"}}
    sender.store.create("by-phone", {**text, "to": PHONE}, "normal")
    sender.store.create("by-bsuid", {**text, "recipient": USER_ID}, "normal")
    assert send_recorded_message(sender, "by-phone").outcome == SendOutcome.SENT
    assert send_recorded_message(sender, "by-bsuid").outcome == SendOutcome.RATE_LIMITED
    assert client.sent == [{**text, "to": PHONE}]


def test_a_send_uses_the_customer_key_on_its_record(redis_client):
    client = RecordingClient()
    sender = Sender(
        store=MessageStore(redis_client),
        dead_letters=DeadLetterStore(redis_client),
        client_for=lambda number: client,
        limiter=SendRateLimiter(redis_client, default_rate=1000, pair_interval=60, pair_burst=1),
        policy=RetryPolicy(max_deferral=30),
        lock_ttl=30,
    )
    text = {"messaging_product": "whatsapp", "type": "text", "text": {"body": "hi"}}
    # The book knows nothing of these two numbers: only the records say they are one customer.
    for name, phone in (("first", PHONE), ("second", "573009999999")):
        sender.store.create(name, {**text, "to": phone}, "normal", customer=USER_ID)
    assert send_recorded_message(sender, "first").outcome == SendOutcome.SENT
    assert send_recorded_message(sender, "second").outcome == SendOutcome.RATE_LIMITED


def test_a_message_by_recipient_goes_to_meta_as_recorded(redis_client):
    client = RecordingClient()
    sender = Sender(
        store=MessageStore(redis_client),
        dead_letters=DeadLetterStore(redis_client),
        client_for=lambda number: client,
        limiter=SendRateLimiter(redis_client, default_rate=1000, pair_interval=0),
        policy=RetryPolicy(max_deferral=30),
        lock_ttl=30,
    )
    payload = {"messaging_product": "whatsapp", "recipient": USER_ID, "type": "text",
               "text": {"body": "hi"}}  # fmt: skip
    sender.store.create("m1", payload, "high")
    assert send_recorded_message(sender, "m1").outcome == SendOutcome.SENT
    assert client.sent == [payload]
    assert sender.store.get("m1").wamid == "wamid.1"
