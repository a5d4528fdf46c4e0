"""The simulator's own endpoints under ``/_sim/``: what it received, its faults and rules, and
simulated customers who write to the gateway."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Blueprint, jsonify, request

from app.simulator.customers import Customer
from app.simulator.samples import SAMPLES
from app.simulator.state import Simulator, current_simulator
from app.simulator.templatebook import CATEGORIES
from app.templates import FIELD_CATEGORY, FIELD_QUALITY, FIELD_STATUS
from app.whatsapp.ids import is_user_id
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


@bp.get("/customers/<key>")
def get_customer(key: str):
    """A simulated customer by number or BSUID: number, BSUID, username, hidden number."""
    customer = current_simulator().customers.find(key)
    if customer is None and validate_whatsapp_number(key):
        customer = current_simulator().customers.get(key)
    if customer is None:
        return jsonify({"error": f"no customer {key}"}), 404
    return jsonify(customer.to_dict())


@bp.put("/customers/<wa_id>")
def put_customer(wa_id: str):
    """Create or change customer ``wa_id``: ``{"name", "username", "hide_phone", "parent"}``
    (``parent``: true gives them a parent BSUID)."""
    sim = current_simulator()
    if not validate_whatsapp_number(wa_id):
        return jsonify({"error": "wa_id must be an international number, digits only"}), 400
    try:
        changes = _customer_changes(request.get_json(force=True, silent=True) or {})
    except ValueError as exc:
        return jsonify({"error": str(exc)}), 400
    return jsonify(sim.customers.update(wa_id, **changes).to_dict())


@bp.post("/customers/<key>/number")
def change_number(key: str):
    """Customer ``key`` (number or BSUID) moves to ``{"wa_id": new number}``: they get that
    number's BSUID, and the gateway a ``user_changed_number`` notice (``user_changed_user_id``
    when they hide their number) with the previous ids."""
    sim = current_simulator()
    data = request.get_json(force=True, silent=True) or {}
    new_wa_id = data.get("wa_id") if isinstance(data, dict) else None
    customer = _known_customer(key)
    if customer is None:
        return jsonify({"error": f"no customer {key}"}), 404
    if not isinstance(new_wa_id, str) or not validate_whatsapp_number(new_wa_id):
        return jsonify({"error": "wa_id must be the new international number, digits only"}), 400
    if sim.dispatcher is None:
        return jsonify({"error": "no webhook URL configured"}), 409
    old, new = sim.customers.change_number(customer.wa_id, new_wa_id)
    sim.windows.close(old.wa_id)
    status = sim.dispatcher.deliver_now(sim.number_change_webhook(old, new))
    return jsonify({"previous": old.to_dict(), "customer": new.to_dict(), "gateway_status": status})


@bp.get("/customers/<key>/window")
def get_window(key: str):
    """Whether the customer's (number or BSUID) customer-service window is open, and until when."""
    wa_id = _window_key(key)
    windows = current_simulator().windows
    return jsonify(
        {"wa_id": wa_id, "open": windows.is_open(wa_id), "closes_at": windows.closes_at(wa_id)}
    )


@bp.put("/customers/<key>/window")
def open_window(key: str):
    """Open the customer's window as if they wrote now, or at ``{"last_message_at": epoch}``."""
    data = request.get_json(force=True, silent=True) or {}
    at = data.get("last_message_at")
    if at is not None and (isinstance(at, bool) or not isinstance(at, int | float)):
        return jsonify({"error": "last_message_at must be a Unix time"}), 400
    current_simulator().windows.open(_window_key(key), at)
    return get_window(key)


@bp.delete("/customers/<key>/window")
def close_window(key: str):
    """Close the customer's window, as if they last wrote more than 24 hours ago."""
    current_simulator().windows.close(_window_key(key))
    return get_window(key)


@bp.post("/customers/<key>/messages")
def customer_says(key: str):
    """A simulated customer (number, or BSUID of a known one) writes: ``{"text": "Hola"}`` or a
    message object with its type; ``name``, ``username``, ``hide_phone`` and ``parent`` change
    the customer first (see ``PUT /_sim/customers/<wa_id>``).

    A media message without an ``id`` gets a file the simulator serves for download: the
    request's ``file`` (``{"content_base64", "mime_type", "filename"}``) or a sample.
    """
    sim = current_simulator()
    data = request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        return jsonify({"error": "send a JSON object"}), 400
    customer = _known_customer(key)
    if customer is None:
        return jsonify({"error": "wa_id must be an international number, digits only"}), 400
    if sim.dispatcher is None:
        return jsonify({"error": "no webhook URL configured"}), 409
    try:
        customer = sim.customers.update(customer.wa_id, **_customer_changes(data))
        message = _customer_message(sim, data)
    except ValueError as exc:
        return jsonify({"error": str(exc)}), 400
    sim.windows.open(customer.wa_id)
    wamid, payload = sim.customer_webhook(customer, message)
    status = sim.dispatcher.deliver_now(payload)
    return jsonify(
        {
            "wamid": wamid,
            "gateway_status": status,
            "message": payload["entry"][0]["changes"][0]["value"]["messages"][0],
            "customer": customer.to_dict(),
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


@bp.post("/templates/<template_id>/<action>")
def change_template(template_id: str, action: str):
    """``approve``, ``reject`` (optional ``reason``), ``quality`` (``score``: GREEN, YELLOW, RED)
    or ``category`` (``category``) a template, and deliver the webhook Meta sends about it."""
    sim = current_simulator()
    if sim.templates.find(template_id) is None:
        return jsonify({"error": "no such template"}), 404
    data = request.get_json(force=True, silent=True) or {}
    if not isinstance(data, dict):
        return jsonify({"error": "send a JSON object"}), 400
    if action == "approve":
        payload = sim.templates.change(template_id, FIELD_STATUS, status="APPROVED")
    elif action == "reject":
        reason = str(data.get("reason", "INVALID_FORMAT"))
        payload = sim.templates.change(
            template_id, FIELD_STATUS, status="REJECTED", rejected_reason=reason
        )
    elif action == "quality" and data.get("score") in ("GREEN", "YELLOW", "RED"):
        payload = sim.templates.change(
            template_id, FIELD_QUALITY, quality_score={"score": data["score"]}
        )
    elif action == "category" and data.get("category") in CATEGORIES:
        payload = sim.templates.change(template_id, FIELD_CATEGORY, category=data["category"])
    else:
        return jsonify({"error": "approve, reject, quality {score} or category {category}"}), 400
    status = sim.dispatcher.deliver_now(payload) if sim.dispatcher is not None else None
    return jsonify({"template": sim.templates.find(template_id), "gateway_status": status})


@bp.get("/health")
def health():
    """The simulator is up."""
    return jsonify({"status": "ok"})


_CUSTOMER_ONLY_KEYS = frozenset({"name", "file", "username", "hide_phone", "parent"})


def _known_customer(key: str) -> Customer | None:
    """The customer a path names: any valid number, or the BSUID of a customer already met."""
    customers = current_simulator().customers
    if validate_whatsapp_number(key):
        return customers.get(key)
    return customers.find(key)


def _window_key(key: str) -> str:
    """Windows are kept by number: a known customer's BSUID stands for their number."""
    customer = current_simulator().customers.find(key) if is_user_id(key) else None
    return customer.wa_id if customer else key


def _customer_changes(data: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError("send a JSON object")
    changes: dict[str, Any] = {}
    for name in ("name", "username"):
        if name in data:
            value = data[name]
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{name} must be a non-empty string")
            changes[name] = value if name == "username" else str(value)
    if changes.get("name") is None:
        changes.pop("name", None)
    for name in ("hide_phone", "parent"):
        if name in data:
            if not isinstance(data[name], bool):
                raise ValueError(f"{name} must be true or false")
            changes[name] = data[name]
    return changes


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
