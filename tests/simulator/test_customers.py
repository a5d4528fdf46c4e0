"""Simulated customers as Meta describes them since business-scoped user ids (BSUIDs): every
webhook names them by BSUID, a customer may have a username and hide the number, change number,
and be reached by ``recipient``."""

from __future__ import annotations

import json
import re

import pytest
import requests

from app.simulator.customers import CustomerBook, bsuid_for
from app.whatsapp import builders, errors
from app.whatsapp.ids import is_user_id
from app.whatsapp.webhook import parse_webhook
from tests.simulator.test_server import CUSTOMER, say
from tests.stack import wait_for
from tests.whatsapp.spec_support import patched_components, schema_errors


def send(server, body):
    return requests.post(
        f"{server.url}/v23.0/{server.config.phone_number_id}/messages",
        json={"messaging_product": "whatsapp", "type": "text", "text": {"body": "Hi"}, **body},
        headers={"Authorization": f"Bearer {server.config.access_token}"},
        timeout=5,
    )


def value_of(payload):
    return payload["entry"][0]["changes"][0]["value"]


def lifecycle(receiver, wamid):
    statuses = wait_for(lambda: (s := receiver.statuses(wamid)) and len(s) == 3 and s)
    payloads = [
        p
        for p in receiver.payloads
        if any(s["id"] == wamid for s in value_of(p).get("statuses", []))
    ]
    return statuses, payloads


# -- identifiers -------------------------------------------------------------------------------


def test_bsuids_are_stable_carry_the_numbers_country_and_differ_per_number():
    first = bsuid_for(CUSTOMER, "waba")
    assert first == bsuid_for(CUSTOMER, "waba") and re.fullmatch(r"CO\.\d{20}", first)
    assert bsuid_for("14155550123", "waba").startswith("US.")
    assert bsuid_for("573009876543", "waba") != first != bsuid_for(CUSTOMER, "other")
    assert re.fullmatch(r"CO\.ENT\.\d{20}", bsuid_for(CUSTOMER, "waba", parent=True))
    assert is_user_id(first) and is_user_id("US.ENT.11815799212886844830")
    assert not any(
        is_user_id(v) for v in ("573001234567", "us.123", "USA.1", "US.", "US.12-3", "US.123\n", 5)
    )


def test_the_book_finds_customers_by_number_bsuid_and_parent_and_stays_bounded():
    book = CustomerBook("waba", capacity=2)
    customer = book.update(CUSTOMER, username="vale", parent=True)
    assert book.find(customer.user_id) is customer is book.find(customer.parent_user_id)
    book.get("573001111111")
    book.get("573002222222")
    assert book.find(customer.user_id) is None  # the least recently named is forgotten


# -- inbound -----------------------------------------------------------------------------------


def test_messages_carry_the_bsuid_beside_the_number(meta):
    server, receiver = meta
    said = say(server, text="Hola", name="Andrés").json()
    user_id = said["customer"]["user_id"]
    assert said["message"]["from"] == CUSTOMER and said["message"]["from_user_id"] == user_id
    (contact,) = value_of(receiver.payloads[-1])["contacts"]
    assert contact == {"profile": {"name": "Andrés"}, "wa_id": CUSTOMER, "user_id": user_id}


def test_a_username_only_customer_writes_without_a_number(meta):
    server, receiver = meta
    said = say(server, text="Hola", name="Vale", username="vale.rios", hide_phone=True).json()
    assert said["gateway_status"] == 200
    value = value_of(receiver.payloads[-1])
    (contact,), (message,) = value["contacts"], value["messages"]
    assert "wa_id" not in contact and "from" not in message
    assert contact["profile"] == {"name": "Vale", "username": "vale.rios"}
    (parsed,) = parse_webhook(receiver.payloads[-1]).messages
    assert parsed.from_ == "" and parsed.from_user_id == said["customer"]["user_id"]
    assert parsed.contact.username == "vale.rios"
    # The BSUID names the customer in the simulator's own API too.
    again = say(server, said["customer"]["user_id"], text="¿Sigues ahí?").json()
    assert again["customer"]["wa_id"] == CUSTOMER and "from" not in again["message"]


def test_parent_bsuids_reach_contacts_and_messages(meta):
    server, receiver = meta
    customer = requests.put(
        f"{server.url}/_sim/customers/{CUSTOMER}", json={"parent": True}, timeout=5
    ).json()
    assert customer["parent_user_id"].startswith("CO.ENT.")
    message = say(server, text="Hola").json()["message"]
    assert message["from_parent_user_id"] == customer["parent_user_id"]
    contact = value_of(receiver.payloads[-1])["contacts"][0]
    assert contact["parent_user_id"] == customer["parent_user_id"]
    assert (
        requests.get(f"{server.url}/_sim/customers/{customer['parent_user_id']}", timeout=5).json()
        == customer
    )


def test_customer_changes_are_validated(meta):
    server, _ = meta
    url = f"{server.url}/_sim/customers/{CUSTOMER}"
    assert requests.put(url, json={"hide_phone": "yes"}, timeout=5).status_code == 400
    assert requests.put(url, json={"username": ""}, timeout=5).status_code == 400
    assert requests.put(f"{server.url}/_sim/customers/+57", json={}, timeout=5).status_code == 400
    assert requests.get(f"{server.url}/_sim/customers/US.404", timeout=5).status_code == 404
    assert say(server, "US.404", text="x").status_code == 400


# -- sending by recipient ----------------------------------------------------------------------


def test_a_hidden_customer_is_reached_by_recipient_and_statuses_name_only_the_bsuid(meta):
    server, receiver = meta
    user_id = say(server, text="Hola", username="vale.rios", hide_phone=True).json()["customer"][
        "user_id"
    ]
    response = send(server, {"recipient": user_id})
    assert response.status_code == 200  # the window follows the customer, whatever names them
    assert response.json()["contacts"] == [{"input": user_id, "user_id": user_id}]
    statuses, payloads = lifecycle(receiver, response.json()["messages"][0]["id"])
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    for status, payload in zip(statuses, payloads, strict=True):
        assert status["recipient_user_id"] == user_id and "recipient_id" not in status
        (contact,) = value_of(payload)["contacts"]
        assert contact["user_id"] == user_id and "wa_id" not in contact
        (parsed,) = parse_webhook(payload).statuses
        assert parsed.recipient_id is None and parsed.recipient_user_id == user_id


def test_to_wins_over_recipient_and_a_leading_plus_is_accepted(meta):
    server, receiver = meta
    say(server, text="Hola", hide_phone=True)
    other = bsuid_for("573009999999", server.config.business_account_id)
    response = send(server, {"to": "+" + CUSTOMER, "recipient": other})
    assert response.status_code == 200
    assert response.json()["contacts"] == [{"input": "+" + CUSTOMER, "wa_id": CUSTOMER}]
    statuses, _ = lifecycle(receiver, response.json()["messages"][0]["id"])
    # Sent to the number: Meta names it, though the customer hides it from their own messages.
    assert {s["recipient_id"] for s in statuses} == {CUSTOMER}


@pytest.mark.parametrize("recipient", ["573001234567", "co.123", "CO.", "CO.12 3", 57, None, ""])
def test_invalid_recipients_get_metas_error_naming_the_parameter(meta, recipient):
    server, _ = meta
    response = send(server, {"recipient": recipient})
    error = response.json()["error"]
    assert response.status_code == 400 and error["code"] == 100
    assert error["type"] == "OAuthException" and error["fbtrace_id"]
    assert error["error_data"]["details"].startswith("Param recipient is invalid")
    bad_to = send(server, {"to": "57-300"}).json()["error"]
    assert (bad_to["code"], bad_to["error_data"]["details"][:12]) == (100, "Param to is ")


def test_recipient_sends_obey_the_window_and_raise_the_same_errors(meta):
    server, _ = meta
    user_id = bsuid_for(CUSTOMER, server.config.business_account_id)
    say(server, text="Hola")
    requests.delete(f"{server.url}/_sim/customers/{user_id}/window", timeout=5)
    message = {**builders.text(CUSTOMER, "Hola")}
    del message["to"]
    with pytest.raises(errors.WindowClosedError):
        server.client().send_message({**message, "recipient": user_id})
    assert (
        requests.get(f"{server.url}/_sim/customers/{CUSTOMER}/window", timeout=5).json()["open"]
        is False
    )


def test_failed_statuses_carry_no_contacts(meta):
    server, receiver = meta
    server.state.configure({"enforce_window": False})
    server.state.faults.update({"failed_rate": 1, "failed_code": 131026})
    sent = server.client().send_message(builders.text(CUSTOMER, "Hola"))
    wait_for(lambda: receiver.statuses(sent.wamid))
    (payload,) = [p for p in receiver.payloads if value_of(p).get("statuses")]
    assert "contacts" not in value_of(payload)
    (status,) = value_of(payload)["statuses"]
    assert status["recipient_id"] == CUSTOMER and is_user_id(status["recipient_user_id"])


# -- number changes ----------------------------------------------------------------------------


def change_number(server, key, new):
    return requests.post(
        f"{server.url}/_sim/customers/{key}/number", json={"wa_id": new}, timeout=10
    )


def test_a_number_change_sends_user_changed_number_with_old_and_new_ids(meta):
    server, receiver = meta
    before = say(server, text="Hola").json()["customer"]
    changed = change_number(server, CUSTOMER, "573009876543").json()
    after = changed["customer"]
    assert changed["gateway_status"] == 200 and after["wa_id"] == "573009876543"
    assert after["user_id"] != before["user_id"]
    value = value_of(receiver.payloads[-1])
    assert "contacts" not in value  # as every system message
    (message,) = value["messages"]
    assert message["from"] == CUSTOMER and message["system"]["type"] == "user_changed_number"
    (identity,) = parse_webhook(receiver.payloads[-1]).identity_changes
    assert (identity.previous_wa_id, identity.wa_id) == (CUSTOMER, "573009876543")
    assert (identity.previous_user_id, identity.user_id) == (before["user_id"], after["user_id"])
    # The old ids are gone; the new ones reach the customer.
    assert requests.get(f"{server.url}/_sim/customers/{before['user_id']}", timeout=5).status_code
    assert say(server, after["user_id"], text="Nuevo número").json()["gateway_status"] == 200


def test_a_hidden_customer_changing_number_sends_user_changed_user_id(meta):
    server, receiver = meta
    requests.put(
        f"{server.url}/_sim/customers/{CUSTOMER}",
        json={"hide_phone": True, "username": "vale.rios", "parent": True},
        timeout=5,
    )
    changed = change_number(server, CUSTOMER, "573009876543").json()
    (message,) = value_of(receiver.payloads[-1])["messages"]
    assert "from" not in message and message["system"]["type"] == "user_changed_user_id"
    assert "wa_id" not in message["system"]
    (identity,) = parse_webhook(receiver.payloads[-1]).identity_changes
    assert identity.wa_id is None and identity.previous_wa_id is None
    assert identity.previous_user_id == changed["previous"]["user_id"]
    assert identity.user_id == changed["customer"]["user_id"]
    assert identity.previous_parent_user_id == changed["previous"]["parent_user_id"]
    assert identity.parent_user_id == changed["customer"]["parent_user_id"]


def test_number_changes_are_validated(meta):
    server, _ = meta
    assert change_number(server, CUSTOMER, "+573009876543").status_code == 400
    assert change_number(server, "US.404", "573009876543").status_code == 404


# -- Meta's spec -------------------------------------------------------------------------------


def test_every_bsuid_webhook_validates_against_the_patched_spec(meta, spec):
    server, receiver = meta
    server.state.configure({"enforce_window": False})
    say(server, text="Hola", username="vale.rios", hide_phone=True, parent=True)
    say(server, "14155550123", text="Hi")
    user_id = bsuid_for(CUSTOMER, server.config.business_account_id)
    sent = send(server, {"recipient": user_id}).json()["messages"][0]["id"]
    lifecycle(receiver, sent)
    server.state.faults.update({"failed_rate": 1})
    failed = send(server, {"recipient": user_id}).json()["messages"][0]["id"]
    wait_for(lambda: receiver.statuses(failed))
    change_number(server, CUSTOMER, "573009876543")
    change_number(server, "14155550123", "14155550124")
    components = patched_components(spec)
    assert len(receiver.payloads) == 8  # 2 messages, 3 + 1 statuses, 2 changes
    for payload in receiver.payloads:
        assert schema_errors(components, "WebhookPayload", payload) == [], payload


def test_the_cli_says_hola_as_a_username_only_customer(meta, capsys):
    from app.cli import main

    server, receiver = meta
    argv = ["simulator", "say", "--url", server.url, "--username", "vale.rios", "--hide-phone"]
    assert main([*argv, "Hola"]) == 0
    said = json.loads(capsys.readouterr().out)
    assert said["customer"]["username"] == "vale.rios" and "from" not in said["message"]
    (message,) = parse_webhook(receiver.payloads[-1]).messages
    assert message.text == "Hola" and message.from_user_id == said["customer"]["user_id"]
