"""The Cloud API simulator: a real HTTP server that plays Meta's Graph API.

Graph endpoints answer with Meta's response and error shapes. Endpoints under ``/_sim/`` are the
simulator's own: what it received, its faults, and simulated customers who write to the gateway.
"""

from __future__ import annotations

import base64
import hmac
import os
import random
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from flask import Flask, jsonify, request

from app.simulator.dispatcher import WebhookDispatcher
from app.whatsapp.webhook import OBJECT_WHATSAPP

RECORD_SIZE = 100_000
"""Sent messages remembered for inspection; older ones are forgotten so memory stays flat."""

DEFAULT_STATUS_DELAY = 0.2
"""Seconds between a message's ``sent``, ``delivered`` and ``read`` webhooks."""


@dataclass
class SimulatorConfig:
    """How the simulator identifies itself and where it delivers webhooks."""

    access_token: str
    webhook_secret: str
    phone_number_id: str
    business_account_id: str = "102290129340398"
    display_phone_number: str = "15550783881"
    webhook_url: str | None = None
    status_delay: float = DEFAULT_STATUS_DELAY
    statuses: bool = True


@dataclass
class Faults:
    """Injected failures; each rate is a probability per request to ``/messages``."""

    error_rate: float = 0.0
    """Answer 500 with Meta's transient error 1."""
    throttle_rate: float = 0.0
    """Answer 429 with error 130429 and a ``Retry-After``."""
    retry_after: float = 1.0
    timeout_rate: float = 0.0
    """Hang for ``hang_seconds`` before answering, past a client's read timeout."""
    hang_seconds: float = 30.0
    latency_ms: float = 0.0
    """Added to every answer: a mean, with ``latency_jitter_ms`` of uniform spread."""
    latency_jitter_ms: float = 0.0
    error_codes: dict[str, float] = field(default_factory=dict)
    """Graph error code to probability, e.g. ``{"131026": 0.05}``."""

    def update(self, changes: dict[str, Any]) -> None:
        for name, value in changes.items():
            if not hasattr(self, name):
                raise ValueError(f"unknown fault {name!r}")
            if name == "error_codes":
                value = {str(int(k)): float(v) for k, v in dict(value).items()}
            else:
                value = float(value)
            setattr(self, name, value)


ERROR_CATALOGUE: dict[int, tuple[int, str, str]] = {
    0: (401, "OAuthException", "AuthException"),
    1: (500, "OAuthException", "API Unknown"),
    2: (503, "OAuthException", "API Service"),
    4: (429, "OAuthException", "API Too Many Calls"),
    10: (403, "OAuthException", "Permission Denied"),
    100: (400, "OAuthException", "Invalid parameter"),
    190: (401, "OAuthException", "Access token has expired"),
    131000: (500, "OAuthException", "Something went wrong"),
    131026: (400, "OAuthException", "Message undeliverable"),
    131047: (400, "OAuthException", "Re-engagement message"),
    131056: (400, "OAuthException", "(Business Account, Consumer Account) pair rate limit hit"),
    130429: (429, "OAuthException", "Rate limit hit"),
}
"""Graph error code to (HTTP status, type, message) as Meta answers them."""


def graph_error(code: int, details: str | None = None, http_status: int | None = None):
    """A Flask response in Meta's error shape for ``code``."""
    status, kind, message = ERROR_CATALOGUE.get(code, (400, "OAuthException", "Error"))
    error: dict[str, Any] = {
        "message": f"(#{code}) {message}",
        "type": kind,
        "code": code,
        "fbtrace_id": "A" + base64.urlsafe_b64encode(os.urandom(15)).decode(),
    }
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    response = jsonify({"error": error})
    response.status_code = http_status or status
    return response


def new_wamid() -> str:
    """A fresh message id in Meta's form."""
    return "wamid." + base64.b64encode(b"\x15\x02\x00\x11\x18" + os.urandom(24)).decode()


class Simulator:
    """The simulator's state: what it received, its faults, its webhook dispatcher."""

    def __init__(self, config: SimulatorConfig, faults: Faults | None = None):
        self.config = config
        self.faults = faults or Faults()
        self.received: deque[dict[str, Any]] = deque(maxlen=RECORD_SIZE)
        self.read_receipts: deque[dict[str, Any]] = deque(maxlen=RECORD_SIZE)
        self.requests_seen = 0
        self.lock = threading.Lock()
        self.dispatcher = (
            WebhookDispatcher(config.webhook_url, config.webhook_secret)
            if config.webhook_url
            else None
        )

    def envelope(self, value: dict[str, Any]) -> dict[str, Any]:
        """Wrap a change ``value`` in Meta's webhook envelope for this number."""
        return {
            "object": OBJECT_WHATSAPP,
            "entry": [
                {
                    "id": self.config.business_account_id,
                    "changes": [
                        {
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": self.config.display_phone_number,
                                    "phone_number_id": self.config.phone_number_id,
                                },
                                **value,
                            },
                            "field": "messages",
                        }
                    ],
                }
            ],
        }

    def status_webhook(self, wamid: str, recipient: str, status: str) -> dict[str, Any]:
        """The webhook Meta sends when message ``wamid`` reaches ``status``."""
        item: dict[str, Any] = {
            "id": wamid,
            "status": status,
            "timestamp": str(int(time.time())),
            "recipient_id": recipient,
        }
        if status != "read":
            item["conversation"] = {"id": "CONVERSATION_ID", "origin": {"type": "service"}}
            item["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "service"}
        return self.envelope({"statuses": [item]})

    def customer_webhook(self, wa_id: str, name: str, message: dict[str, Any]) -> tuple[str, dict]:
        """A webhook carrying ``message`` from customer ``wa_id``; returns its wamid too."""
        wamid = new_wamid()
        body = {"from": wa_id, "id": wamid, "timestamp": str(int(time.time())), **message}
        value = {"contacts": [{"profile": {"name": name}, "wa_id": wa_id}], "messages": [body]}
        return wamid, self.envelope(value)


def create_simulator(config: SimulatorConfig, faults: Faults | None = None) -> Flask:
    """The simulator's Flask application."""
    app = Flask(__name__)
    sim = Simulator(config, faults)
    app.extensions["simulator"] = sim

    def authorised() -> bool:
        header = request.headers.get("Authorization", "")
        expected = f"Bearer {config.access_token}"
        return hmac.compare_digest(header.encode(), expected.encode())

    @app.post("/<version>/<phone_number_id>/messages")
    def messages(version: str, phone_number_id: str):
        with sim.lock:
            sim.requests_seen += 1
        if not authorised():
            return graph_error(190, "Invalid OAuth access token")
        if phone_number_id != config.phone_number_id:
            return graph_error(100, f"Unknown phone number id {phone_number_id}")
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return graph_error(100, "messaging_product must be whatsapp")
        if body.get("status") == "read" and isinstance(body.get("message_id"), str):
            with sim.lock:
                sim.read_receipts.append(body)
            return jsonify({"success": True})
        if not body.get("to") or not body.get("type"):
            return graph_error(100, "to and type are required")
        injected = _inject_fault(sim.faults)
        if injected is not None:
            return injected
        wamid = new_wamid()
        to = str(body["to"])
        with sim.lock:
            sim.received.append({"wamid": wamid, "at": time.time(), "body": body})
        if sim.dispatcher and config.statuses and body.get("type") != "reaction":
            for step, status in enumerate(("sent", "delivered", "read"), start=1):
                sim.dispatcher.schedule(
                    sim.status_webhook(wamid, to, status), config.status_delay * step
                )
        return jsonify(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": wamid}],
            }
        )

    @app.get("/_sim/messages")
    def sent_messages():
        with sim.lock:
            return jsonify(
                {
                    "messages": list(sim.received),
                    "read_receipts": list(sim.read_receipts),
                    "requests": sim.requests_seen,
                }
            )

    @app.delete("/_sim/messages")
    def clear_messages():
        with sim.lock:
            sim.received.clear()
            sim.read_receipts.clear()
            sim.requests_seen = 0
        return "", 204

    @app.get("/_sim/webhooks")
    def webhook_attempts():
        attempts = list(sim.dispatcher.attempts) if sim.dispatcher else []
        pending = sim.dispatcher.pending() if sim.dispatcher else 0
        return jsonify({"attempts": attempts, "pending": pending})

    @app.get("/_sim/faults")
    def get_faults():
        return jsonify(asdict(sim.faults))

    @app.put("/_sim/faults")
    def put_faults():
        try:
            sim.faults.update(request.get_json(force=True) or {})
        except (TypeError, ValueError) as exc:
            return jsonify({"error": str(exc)}), 400
        return jsonify(asdict(sim.faults))

    @app.post("/_sim/customers/<wa_id>/messages")
    def customer_says(wa_id: str):
        """A simulated customer writes: ``{"text": "Hola"}`` or a full message object."""
        data = request.get_json(force=True, silent=True) or {}
        if sim.dispatcher is None:
            return jsonify({"error": "no webhook URL configured"}), 409
        if "text" in data and isinstance(data["text"], str):
            message = {"type": "text", "text": {"body": data["text"]}}
        elif isinstance(data.get("type"), str) and isinstance(data.get(data["type"]), dict):
            message = {k: v for k, v in data.items() if k != "name"}
        else:
            return jsonify({"error": "send {'text': ...} or a message object with its type"}), 400
        wamid, payload = sim.customer_webhook(wa_id, str(data.get("name", "Customer")), message)
        status = sim.dispatcher.deliver_now(payload)
        return jsonify({"wamid": wamid, "gateway_status": status})

    @app.get("/_sim/health")
    def health():
        return jsonify({"status": "ok"})

    return app


def _inject_fault(faults: Faults):
    if faults.latency_ms or faults.latency_jitter_ms:
        jitter = random.uniform(-faults.latency_jitter_ms, faults.latency_jitter_ms)
        time.sleep(max(0.0, faults.latency_ms + jitter) / 1000)
    if faults.timeout_rate and random.random() < faults.timeout_rate:
        time.sleep(faults.hang_seconds)
    if faults.error_rate and random.random() < faults.error_rate:
        return graph_error(1, "Injected failure", http_status=500)
    if faults.throttle_rate and random.random() < faults.throttle_rate:
        response = graph_error(130429, "Injected throttling")
        response.headers["Retry-After"] = str(faults.retry_after)
        return response
    for code, rate in faults.error_codes.items():
        if random.random() < rate:
            return graph_error(int(code), "Injected error")
    return None
