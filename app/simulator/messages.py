"""``POST /{version}/{phone_number_id}/messages``: sends and read receipts, under Meta's rules."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, jsonify, request

from app.simulator.graph import authorised, injected_fault, pause, refuse, unknown_object
from app.simulator.meta import new_wamid
from app.simulator.state import current_simulator
from app.whatsapp.errors import MessageValidationError
from app.whatsapp.messages import validate_request

bp = Blueprint("messages", __name__)

_REFUSAL_DETAILS = {
    131026: "The recipient is not a WhatsApp user",
    131047: "More than 24 hours have passed since the customer last replied to this number",
}


@bp.post("/<version>/<phone_number_id>/messages")
def messages(version: str, phone_number_id: str):
    """Accept a message (or a read receipt) as Meta would, or refuse it with Meta's error."""
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
        body = validate_request(received)
    except MessageValidationError as exc:
        return refuse(100, f"Param {exc.field} is invalid: {exc.message}")
    if "status" in body and "to" not in body:
        with sim.lock:
            sim.read_receipts.append(received)
        return jsonify({"success": True})
    if sim.faults.hangs_for(str(body["to"])) and not pause(sim.faults.hang_seconds):
        return refuse(2, "The client hung up before the answer", http_status=503)
    injected = injected_fault()
    if injected is not None:
        return injected
    if sim.throughput is not None and not sim.throughput.take():
        return refuse(130429, "Message throughput limit of this phone number reached")
    to = str(body["to"])
    if config.pair_limit and not sim.pairs.take(to):
        return refuse(131056, "Too many messages to this recipient in a short time")
    failure = None
    if to in config.not_on_whatsapp:
        failure = 131026
    elif config.enforce_window and body["type"] != "template" and not sim.windows.is_open(to):
        failure = 131047
    if failure is not None and not config.refusals_as_statuses:
        return refuse(failure, _REFUSAL_DETAILS[failure])
    if failure is None and sim.faults.failed_rate and sim.random.random() < sim.faults.failed_rate:
        failure = sim.faults.failed_code
    wamid = new_wamid()
    with sim.lock:
        sim.received.append({"wamid": wamid, "at": time.time(), "body": received})
    if body["type"] != "reaction":
        category = "utility" if body["type"] == "template" else "service"
        sim.schedule_statuses(wamid, to, category, failure)
    if sim.faults.late_answer_rate and sim.random.random() < sim.faults.late_answer_rate:
        pause(sim.faults.late_answer_seconds)  # accepted either way
    message: dict[str, Any] = {"id": wamid}
    if body["type"] == "template":
        message["message_status"] = "accepted"
    return jsonify(
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [message],
        }
    )
