"""The simulator's own endpoints under ``/_sim/``: what it received, its faults and rules, and
simulated customers who write to the gateway."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Blueprint, jsonify, request

from app.simulator.samples import SAMPLES
from app.simulator.state import Simulator, current_simulator
from app.whatsapp.messages import MEDIA_TYPES
from app.whatsapp.phone import validate_whatsapp_number

bp = Blueprint("control", __name__, url_prefix="/_sim")


@bp.get("/messages")
def sent_messages():
    """Every message accepted and read receipt received, with request and refusal counts."""
    sim = current_simulator()
    with sim.lock:
        return jsonify(
            {
                "messages": list(sim.received),
                "read_receipts": list(sim.read_receipts),
                "requests": sim.requests_seen,
                "refused": {str(code): count for code, count in sim.refused.items()},
            }
        )


@bp.get("/stats")
def stats():
    """How many messages were accepted, out of how many requests."""
    sim = current_simulator()
    with sim.lock:
        return jsonify({"received": len(sim.received), "requests": sim.requests_seen})


@bp.delete("/messages")
def clear_messages():
    """Forget what was received and the counts."""
    sim = current_simulator()
    with sim.lock:
        sim.received.clear()
        sim.read_receipts.clear()
        sim.requests_seen = 0
        sim.refused.clear()
    return "", 204


@bp.get("/webhooks")
def webhook_attempts():
    """The webhook deliveries attempted, those still due, and those given up."""
    dispatcher = current_simulator().dispatcher
    return jsonify(
        {
            "attempts": list(dispatcher.attempts) if dispatcher else [],
            "pending": dispatcher.pending() if dispatcher else 0,
            "dropped": dispatcher.dropped if dispatcher else 0,
        }
    )


@bp.get("/faults")
def get_faults():
    """The faults in force."""
    return jsonify(current_simulator().faults.to_dict())


@bp.put("/faults")
def put_faults():
    """Change the faults named in the body."""
    faults = current_simulator().faults
    try:
        faults.update(request.get_json(force=True, silent=True))
    except (TypeError, ValueError) as exc:
        return jsonify({"error": str(exc)}), 400
    return jsonify(faults.to_dict())


@bp.get("/config")
def get_config():
    """The rules in force."""
    return jsonify(current_simulator().settings())


@bp.put("/config")
def put_config():
    """Change the rules named in the body (see ``RUNTIME_SETTINGS``)."""
    sim = current_simulator()
    try:
        sim.configure(request.get_json(force=True, silent=True))
    except (TypeError, ValueError) as exc:
        return jsonify({"error": str(exc)}), 400
    return jsonify(sim.settings())


@bp.get("/customers/<wa_id>/window")
def get_window(wa_id: str):
    """Whether ``wa_id``'s customer-service window is open, and until when."""
    windows = current_simulator().windows
    return jsonify(
        {"wa_id": wa_id, "open": windows.is_open(wa_id), "closes_at": windows.closes_at(wa_id)}
    )


@bp.put("/customers/<wa_id>/window")
def open_window(wa_id: str):
    """Open ``wa_id``'s window as if they wrote now, or at ``{"last_message_at": epoch}``."""
    data = request.get_json(force=True, silent=True) or {}
    at = data.get("last_message_at")
    if at is not None and (isinstance(at, bool) or not isinstance(at, int | float)):
        return jsonify({"error": "last_message_at must be a Unix time"}), 400
    current_simulator().windows.open(wa_id, at)
    return get_window(wa_id)


@bp.delete("/customers/<wa_id>/window")
def close_window(wa_id: str):
    """Close ``wa_id``'s window, as if they last wrote more than 24 hours ago."""
    current_simulator().windows.close(wa_id)
    return get_window(wa_id)


@bp.post("/customers/<wa_id>/messages")
def customer_says(wa_id: str):
    """A simulated customer writes: ``{"text": "Hola"}`` or a message object with its type.

    A media message without an ``id`` gets a file the simulator serves for download: the
    request's ``file`` (``{"content_base64", "mime_type", "filename"}``) or a sample.
    """
    sim = current_simulator()
    data = request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        return jsonify({"error": "send a JSON object"}), 400
    if not validate_whatsapp_number(wa_id):
        return jsonify({"error": "wa_id must be an international number, digits only"}), 400
    if sim.dispatcher is None:
        return jsonify({"error": "no webhook URL configured"}), 409
    try:
        message = _customer_message(sim, data)
    except ValueError as exc:
        return jsonify({"error": str(exc)}), 400
    sim.windows.open(wa_id)
    wamid, payload = sim.customer_webhook(wa_id, str(data.get("name", "Customer")), message)
    status = sim.dispatcher.deliver_now(payload)
    return jsonify(
        {
            "wamid": wamid,
            "gateway_status": status,
            "message": payload["entry"][0]["changes"][0]["value"]["messages"][0],
        }
    )


@bp.post("/events")
def raw_event():
    """Deliver any change (``{"field": ..., "value": {...}}``), such as a group update."""
    sim = current_simulator()
    data = request.get_json(force=True, silent=True)
    if not isinstance(data, dict) or not isinstance(data.get("value"), dict):
        return jsonify({"error": "send {'field': ..., 'value': {...}}"}), 400
    if sim.dispatcher is None:
        return jsonify({"error": "no webhook URL configured"}), 409
    payload = sim.envelope(data["value"], str(data.get("field", "messages")))
    return jsonify({"gateway_status": sim.dispatcher.deliver_now(payload)})


@bp.get("/health")
def health():
    """The simulator is up."""
    return jsonify({"status": "ok"})


_CUSTOMER_ONLY_KEYS = frozenset({"name", "file"})


def _customer_message(sim: Simulator, data: dict[str, Any]) -> dict[str, Any]:
    if isinstance(data.get("text"), str):
        message: dict[str, Any] = {"type": "text", "text": {"body": data["text"]}}
        if isinstance(data.get("context"), dict):
            message["context"] = data["context"]
        return message
    kind = data.get("type")
    if not isinstance(kind, str) or not kind:
        raise ValueError("send {'text': ...} or a message object with its type")
    message = {k: v for k, v in data.items() if k not in _CUSTOMER_ONLY_KEYS}
    if kind in MEDIA_TYPES:
        media = message.get(kind) or {}
        if not isinstance(media, dict):
            raise ValueError(f"'{kind}' must be an object")
        if "id" in media:
            stored = sim.media.get(str(media["id"]))
            if stored is None:
                raise ValueError(f"no media {media['id']}: upload it first, or leave 'id' out")
        else:
            content, mime_type, filename = _customer_file(kind, data.get("file"))
            stored = sim.media.put(content, mime_type, sim.config.phone_number_id, filename)
            if kind == "document":
                media = {"filename": filename, **media}
        media = {
            **media,
            "mime_type": stored.mime_type,
            "sha256": stored.sha256_base64,
            "id": stored.id,
        }
        message[kind] = media
    return message


def _customer_file(kind: str, file: Any) -> tuple[bytes, str, str]:
    if file is None:
        return SAMPLES[kind]
    if not isinstance(file, dict) or not isinstance(file.get("content_base64"), str):
        raise ValueError("file must be {'content_base64': ..., 'mime_type': ...}")
    try:
        content = base64.b64decode(file["content_base64"], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("file.content_base64 is not base64") from None
    mime_type = str(file.get("mime_type") or SAMPLES[kind][1])
    return content, mime_type, str(file.get("filename") or SAMPLES[kind][2])
