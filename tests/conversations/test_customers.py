"""The contact book: one customer key per customer, whichever ids Meta names them by."""

from __future__ import annotations

import pytest

from app import keys
from app.conversations.context import ConversationStore
from app.conversations.customers import CustomerBook, Identity, kind_of
from app.whatsapp.webhook import IdentityChange, WebhookEvent, parse_webhook
from tests.conversations.helpers import exchange
from tests.conversations.identity_payloads import (
    NUMBER,
    PARENT_USER_ID,
    USER_ID,
    number_changed,
    status_of,
    text_from,
    user_id_changed,
)

pytestmark = pytest.mark.any_redis

PHONE = "573001234567"


@pytest.fixture
def book(redis_client):
    return CustomerBook(redis_client)


def test_a_new_customer_is_keyed_by_their_bsuid_else_their_phone(book):
    assert book.learn(NUMBER, Identity(wa_id=PHONE, user_id=USER_ID)) == USER_ID
    assert book.learn(NUMBER, Identity(wa_id="573007654321")) == "573007654321"
    assert book.learn(NUMBER, Identity(username="ana")) is None


def test_every_id_finds_the_one_key(book):
    book.learn(NUMBER, Identity(PHONE, USER_ID, PARENT_USER_ID, "ana.co"))
    for customer_id in (PHONE, USER_ID, PARENT_USER_ID):
        assert book.key_for(NUMBER, customer_id) == USER_ID
    customer = book.get(NUMBER, USER_ID)
    assert (customer.wa_id, customer.user_id, customer.username) == (PHONE, USER_ID, "ana.co")
    assert book.redis.get(book.id_key(NUMBER, "username", "ana.co")) == USER_ID


def test_an_unknown_id_stands_for_itself(book):
    assert book.key_for(NUMBER, PHONE) == PHONE
    assert book.key_for(NUMBER, USER_ID) == USER_ID


def test_a_customer_first_seen_by_phone_keeps_the_phone_key_when_a_bsuid_comes(book):
    assert book.learn(NUMBER, Identity(wa_id=PHONE)) == PHONE
    assert book.learn(NUMBER, Identity(wa_id=PHONE, user_id=USER_ID)) == PHONE
    # Later messages may name the BSUID alone (the customer hid their phone): same customer.
    assert book.learn(NUMBER, Identity(user_id=USER_ID, username="ana.co")) == PHONE
    assert book.key_for(NUMBER, USER_ID) == PHONE


def test_data_stored_under_a_phone_before_the_book_stays_reachable(book, redis_client):
    # A deployment upgraded with conversations stored under phone numbers, and no book yet.
    ConversationStore(redis_client).record(
        NUMBER, PHONE, exchange("wamid.old", "Hola"), text="Hola"
    )
    assert book.learn(NUMBER, Identity(wa_id=PHONE, user_id=USER_ID)) == PHONE
    assert book.key_for(NUMBER, USER_ID) == PHONE


def test_the_book_is_per_sending_number(book):
    book.learn(NUMBER, Identity(wa_id=PHONE))
    assert book.learn("999000111", Identity(wa_id=PHONE, user_id=USER_ID)) == USER_ID
    assert book.key_for(NUMBER, USER_ID) == USER_ID  # unknown there: itself


def test_an_identity_change_links_the_new_ids_to_the_old_history(book):
    book.learn(NUMBER, Identity(wa_id=PHONE, user_id=USER_ID))
    event = WebhookEvent(
        identity_changes=[
            IdentityChange(
                NUMBER,
                0,
                previous_wa_id=PHONE,
                wa_id="573009999999",
                previous_user_id=USER_ID,
                user_id="CO.99999999999999999999",
            )
        ]
    )
    book.learn_event(event)
    assert book.key_for(NUMBER, "573009999999") == USER_ID
    assert book.key_for(NUMBER, "CO.99999999999999999999") == USER_ID
    assert book.get(NUMBER, USER_ID).wa_id == "573009999999"


def test_ids_are_learnt_from_messages_statuses_and_system_notices(book):
    senders = book.learn_event(parse_webhook(text_from("Hola", username="ana.co")))
    assert list(senders.values()) == [USER_ID]
    assert book.get(NUMBER, USER_ID).username == "ana.co"
    book.learn_event(parse_webhook(status_of("wamid.X", "delivered", wa_id=PHONE)))
    assert book.key_for(NUMBER, PHONE) == USER_ID
    # A failed status comes without contacts: its recipient ids still link.
    book.learn_event(
        parse_webhook(status_of("wamid.Y", "failed", wa_id="573001111111", with_contacts=False))
    )
    assert book.key_for(NUMBER, "573001111111") == USER_ID
    book.learn_event(parse_webhook(user_id_changed(USER_ID, "CO.22222222222222222222")))
    assert book.key_for(NUMBER, "CO.22222222222222222222") == USER_ID
    book.learn_event(parse_webhook(number_changed(PHONE, "573008888888")))
    assert book.key_for(NUMBER, "573008888888") == USER_ID


def test_ids_expire_with_the_profile(book, redis_client):
    book.learn(NUMBER, Identity(wa_id=PHONE, user_id=USER_ID))
    assert 0 < redis_client.ttl(book.id_key(NUMBER, "phone", PHONE)) <= keys.CUSTOMER_TTL
    assert 0 < redis_client.ttl(book.record_key(NUMBER, USER_ID)) <= keys.CUSTOMER_TTL


def test_kinds_of_ids():
    assert kind_of(PHONE) == "phone"
    assert kind_of(USER_ID) == "user"
    assert kind_of(PARENT_USER_ID) == "parent"
    assert kind_of("co.123") is None and kind_of("CO.") is None and kind_of("+57300") is None


def test_ids_with_anything_around_them_are_no_kind_of_id():
    for value in [PHONE + "\n", "\n" + PHONE, PHONE + "/..", "²²²²²²", "١٢٣٤٥٦", USER_ID + "\n"]:
        assert kind_of(value) is None, repr(value)


def test_many_ids_find_their_keys_in_one_read_as_one_by_one(book):
    book.learn(NUMBER, Identity(PHONE, USER_ID))
    asked = [(NUMBER, PHONE), (NUMBER, "573009999999"), ("999", PHONE), (NUMBER, "not an id")]
    assert book.keys_for(asked) == [book.key_for(n, c) for n, c in asked]
    assert book.keys_for(asked) == [USER_ID, "573009999999", PHONE, "not an id"]
    assert book.keys_for([]) == []
