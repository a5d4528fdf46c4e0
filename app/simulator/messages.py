"""``POST /{version}/{phone_number_id}/messages``: sends and read receipts, under Meta's rules."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, jsonify, request

from app.simulator.graph import authorised, injected_fault, pause, refuse, unknown_object
from app.simulator.meta import new_wamid
from app.simulator.state import current_simulator
from app.simulator.templatebook import template_refusal
from app.whatsapp.errors import MessageValidationError
from app.whatsapp.ids import is_user_id
from app.whatsapp.messages import validate_request

bp = Blueprint("messages", __name__)

_REFUSAL_DETAILS = {
    131026: "The recipient is not a WhatsApp user",
    131047: "More than 24 hours have passed since the customer last replied to this number",
}


@bp.post("/<version>/<phone_number_id>/messages")
def messages(version: str, phone_number_id: str):
    """Accept a message (or a read receipt) as Meta would, or refuse it with Meta's error."""
    arrived = time.time()  # when the request reached "Meta", before any work on it
    sim = current_simulator()
    config = sim.config
    with sim.lock:
        sim.requests_seen += 1
    if not authorised():
        return refuse(190, "Invalid OAuth access token")
    if phone_number_id != config.phone_number_id:
        return unknown_object(phone_number_id)
    received = request.get_json(silent=True)
    try:
        checked, to, recipient = addressed(received)
        body = validate_request(checked)
    except MessageValidationError as exc:
        return refuse(100, f"Param {exc.field} is invalid: {exc.message}")
    if "status" in body and to is None and recipient is None:
        with sim.lock:
            sim.read_receipts.append(received)
        return jsonify({"success": True})
    # Meta sends to ``to`` when both are given; limits and windows follow the customer's number.
    address = to if to is not None else str(recipient)
    customer = sim.customer_for(address) if body.get("recipient_type") != "group" else None
    key = customer.wa_id if customer else address
    if sim.faults.hangs_for(key) and not pause(sim.faults.hang_seconds):
        return refuse(2, "The client hung up before the answer", http_status=503)
    injected = injected_fault()
    if injected is not None:
        return injected
    if body["type"] == "template":
        refusal = template_refusal(sim.templates, body["template"])
        if refusal is not None:
            return refuse(*refusal)
    if sim.throughput is not None and not sim.throughput.take():
        return refuse(130429, "Message throughput limit of this phone number reached")
    if config.pair_limit and not sim.pairs.take(key):
        return refuse(131056, "Too many messages to this recipient in a short time")
    failure = None
    if key in config.not_on_whatsapp:
        failure = 131026
    elif config.enforce_window and body["type"] != "template" and not sim.windows.is_open(key):
        failure = 131047
    if failure is not None and not config.refusals_as_statuses:
        return refuse(failure, _REFUSAL_DETAILS[failure])
    if failure is None and sim.faults.failed_rate and sim.random.random() < sim.faults.failed_rate:
        failure = sim.faults.failed_code
    wamid = new_wamid()
    with sim.lock:
        sim.received.append({"wamid": wamid, "at": arrived, "body": received})
    if body["type"] != "reaction":
        category = "service"
        if body["type"] == "template":
            # Meta prices a template by its category; one it does not hold counts as utility.
            kept = sim.templates.named(
                body["template"]["name"], body["template"]["language"]["code"]
            )
            category = kept["category"].lower() if kept else "utility"
        sim.schedule_statuses(wamid, address, category, failure, by_phone=to is not None)
    if sim.faults.late_answer_rate and sim.random.random() < sim.faults.late_answer_rate:
        pause(sim.faults.late_answer_seconds)  # accepted either way
    message: dict[str, Any] = {"id": wamid}
    if body["type"] == "template":
        message["message_status"] = "accepted"
    if to is not None:
        contact = {"input": received["to"], "wa_id": to}
    else:
        contact = {"input": recipient, "user_id": customer.user_id if customer else recipient}
    return jsonify({"messaging_product": "whatsapp", "contacts": [contact], "messages": [message]})


def addressed(received: Any) -> tuple[dict[str, Any], str | None, str | None]:
    """The body with ``to`` in digits (Meta accepts a leading ``+``), its ``to`` and its
    ``recipient`` (a BSUID or parent BSUID); raises MessageValidationError for a bad recipient."""
    if not isinstance(received, dict):
        raise MessageValidationError("body", "must be a JSON object")
    to, recipient = received.get("to"), received.get("recipient")
    if "recipient" in received and not is_user_id(recipient):
        raise MessageValidationError(
            "recipient",
            "must be a business-scoped user id such as US.13491208655302741918 "
            "or a parent one such as US.ENT.11815799212886844830",
        )
    if isinstance(to, str) and to.startswith("+"):
        to = to[1:]
        received = {**received, "to": to}
    return received, to if isinstance(to, str) else None, recipient
