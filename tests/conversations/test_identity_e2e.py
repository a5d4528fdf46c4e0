"""Customers known by business-scoped user id, as separate processes: signed webhooks posted to
the web app under gunicorn, two Celery workers, Redis, and the simulator playing Meta.
"""

from __future__ import annotations

import requests

from app.conversations.inbound import reply_id
from tests.conversations.identity_payloads import USER_ID, text_from
from tests.conversations.test_flow_e2e import API_KEY, stack  # noqa: F401 - the module's stack
from tests.stack import text_webhook, wait_for

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def reply_of(stack, wamid: str) -> dict | None:  # noqa: F811 - the stack fixture
    response = requests.get(
        f"{stack.web_url}/v1/messages/{reply_id(wamid)}", headers=AUTH, timeout=5
    )
    return response.json() if response.status_code == 200 else None


def test_a_username_only_customer_is_answered_by_recipient_in_context(stack):  # noqa: F811
    hello = text_from("Hola", username="ana.co")
    assert stack.post(hello) == 200
    first = wait_for(
        lambda: reply_of(stack, hello["entry"][0]["changes"][0]["value"]["messages"][0]["id"]),
        timeout=60,
    )
    assert first["message"]["recipient"] == USER_ID and "to" not in first["message"]
    assert "Hola Ana" in first["message"]["text"]["body"]
    wait_for(
        lambda: (
            len(
                (stack.conversation(USER_ID) or {"context": {"exchanges": []}})["context"][
                    "exchanges"
                ]
            )
            == 2
        ),
        timeout=30,
    )
    price = text_from("¿Cuánto cuesta la camiseta roja?", username="ana.co")
    assert stack.post(price) == 200
    wait_for(
        lambda: reply_of(stack, price["entry"][0]["changes"][0]["value"]["messages"][0]["id"]),
        timeout=60,
    )
    wait_for(lambda: len(stack.conversation(USER_ID)["context"]["exchanges"]) == 4, timeout=30)
    follow_up = text_from("¿Y cuánto tarda el envío de esa?", username="ana.co")
    assert stack.post(follow_up) == 200
    answer = wait_for(
        lambda: reply_of(stack, follow_up["entry"][0]["changes"][0]["value"]["messages"][0]["id"]),
        timeout=60,
    )
    assert answer["message"]["text"]["body"] == "La camiseta roja llega en 1 a 2 días hábiles."
    conversation = stack.conversation(USER_ID)
    assert conversation["wa_id"] is None and conversation["customer"]["username"] == "ana.co"
    assert conversation["window"]["open"] is True


def test_a_phone_customer_who_later_writes_with_a_bsuid_keeps_one_conversation(stack):  # noqa: F811
    phone, user_id = "573005551234", "CO.77777777777777777777"
    first = text_webhook(phone, "¿Cuánto cuesta la camiseta roja?")
    assert stack.post(first) == 200
    (reply,) = wait_for(
        lambda: stack.replies_to(first["entry"][0]["changes"][0]["value"]["messages"][0]["id"]),
        timeout=60,
    )
    assert reply["to"] == phone
    wait_for(
        lambda: (
            len(
                (stack.conversation(phone) or {"context": {"exchanges": []}})["context"][
                    "exchanges"
                ]
            )
            == 2
        ),
        timeout=30,
    )
    later = text_from("¿Y cuánto tarda el envío de esa?", wa_id=phone, user_id=user_id)
    assert stack.post(later) == 200
    (answer,) = wait_for(
        lambda: stack.replies_to(later["entry"][0]["changes"][0]["value"]["messages"][0]["id"]),
        timeout=60,
    )
    assert answer["to"] == phone
    assert answer["text"]["body"] == "La camiseta roja llega en 1 a 2 días hábiles."
    by_bsuid = wait_for(
        lambda: (c := stack.conversation(user_id)) and len(c["context"]["exchanges"]) == 4 and c,
        timeout=30,
    )
    assert by_bsuid["customer"]["key"] == phone and by_bsuid["wa_id"] == phone


def customer_says(stack, phone: str, text: str, **customer) -> dict:  # noqa: F811
    """A simulated customer writes through the simulator, as one of Meta's would."""
    response = requests.post(
        f"{stack.simulator_url}/_sim/customers/{phone}/messages",
        json={"text": text, **customer},
        timeout=15,
    )
    assert response.status_code == 200, response.text
    said = response.json()
    assert said["gateway_status"] == 200
    return said


def status_of(stack, message_id: str) -> str | None:  # noqa: F811
    response = requests.get(f"{stack.web_url}/v1/messages/{message_id}", headers=AUTH, timeout=5)
    return response.json()["status"] if response.status_code == 200 else None


def test_a_username_only_customer_talks_through_the_simulator_and_is_reached_by_bsuid(stack):  # noqa: F811
    phone = "573001112233"
    hello = customer_says(stack, phone, "Hola", name="Bea", username="bea.co", hide_phone=True)
    assert "from" not in hello["message"]  # Meta withholds the number of a username customer
    user_id = hello["customer"]["user_id"]
    reply = wait_for(lambda: stack.replies_to(hello["wamid"]), timeout=60)[0]
    assert reply["recipient"] == user_id and "to" not in reply
    assert "Hola Bea" in reply["text"]["body"]
    wait_for(lambda: status_of(stack, reply_id(hello["wamid"])) == "read", timeout=60)

    price = customer_says(stack, phone, "¿Cuánto cuesta la camiseta roja?")
    wait_for(lambda: stack.replies_to(price["wamid"]), timeout=60)
    follow_up = customer_says(stack, phone, "¿Y cuánto tarda el envío de esa?")
    answer = wait_for(lambda: stack.replies_to(follow_up["wamid"]), timeout=60)[0]
    assert answer["text"]["body"] == "La camiseta roja llega en 1 a 2 días hábiles."
    assert answer["recipient"] == user_id

    sent = requests.post(
        f"{stack.web_url}/v1/messages",
        headers=AUTH,
        json={"recipient": user_id, "type": "text", "text": {"body": "Tu pedido salió hoy."}},
        timeout=10,
    )
    assert sent.status_code == 202, sent.text
    wait_for(lambda: status_of(stack, sent.json()["id"]) == "read", timeout=60)
    conversation = stack.conversation(user_id)
    assert conversation["wa_id"] is None and conversation["customer"]["username"] == "bea.co"
