"""The Cloud API simulator: a real HTTP server that plays Meta's Graph API.

Graph endpoints answer with Meta's response and error shapes and follow Meta's rules (the message
schema, throughput and pair limits, the customer-service window, numbers not on WhatsApp, media
with expiring download URLs). Endpoints under ``/_sim/`` are the simulator's own: what it
received, its faults and rules, and simulated customers who write to the gateway.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any

from flask import Flask, Response, jsonify, request

from app.simulator.dispatcher import WebhookDispatcher
from app.simulator.faults import Faults
from app.simulator.limits import PairLimiter, ServiceWindows, TokenBucket
from app.simulator.mediastore import (
    DOWNLOAD_PATH,
    MEDIA_CAPACITY_BYTES,
    MEDIA_URL_TTL,
    MediaStore,
)
from app.simulator.meta import (
    ERROR_CATALOGUE,
    envelope,
    error_body,
    error_status,
    new_wamid,
    status_error,
    status_item,
)
from app.simulator.samples import SAMPLES
from app.whatsapp.errors import MediaError, MessageValidationError
from app.whatsapp.media import DOCUMENT_MAX_BYTES, check_media
from app.whatsapp.messages import MEDIA_TYPES, validate_request
from app.whatsapp.phone import validate_whatsapp_number

__all__ = [
    "ERROR_CATALOGUE",
    "Faults",
    "Simulator",
    "SimulatorConfig",
    "create_simulator",
    "graph_error",
    "new_wamid",
    "serve",
]

RECORD_SIZE = 100_000
"""Sent messages remembered for inspection; older ones are forgotten so memory stays flat."""

DEFAULT_STATUS_DELAY = 0.2
"""Seconds between a message's ``sent``, ``delivered`` and ``read`` webhooks."""

DEFAULT_THROUGHPUT = 80.0
"""Messages a second one business number may send (Meta's default tier)."""

PAIR_INTERVAL = 6.0
"""Seconds per message to one customer, once the burst is spent (Meta's pair rate limit)."""

PAIR_BURST = 45
"""Messages to one customer that may go at once before the pair rate applies."""

HANG_UP_CHECK_SECONDS = 0.1
"""How often a delayed answer checks whether its client is still there."""

UPLOAD_LIMIT_BYTES = DOCUMENT_MAX_BYTES + 1024 * 1024
"""Largest upload request read: the largest media (a document) plus room for the form."""


@dataclass
class SimulatorConfig:
    """Who the simulator is, where it delivers webhooks, and which of Meta's rules it applies."""

    access_token: str
    webhook_secret: str
    phone_number_id: str
    business_account_id: str = "102290129340398"
    display_phone_number: str = "15550783881"
    webhook_url: str | None = None
    status_delay: float = DEFAULT_STATUS_DELAY
    statuses: bool = True
    throughput_per_second: float = DEFAULT_THROUGHPUT
    """Per-number limit (error 130429 beyond it); 0 turns it off."""
    pair_limit: bool = True
    """Meta's per-recipient limit (error 131056)."""
    pair_interval: float = PAIR_INTERVAL
    pair_burst: int = PAIR_BURST
    enforce_window: bool = True
    """Refuse free-form messages to customers who have not written in 24 hours (131047)."""
    not_on_whatsapp: set[str] = field(default_factory=set)
    """Numbers without a WhatsApp account (131026)."""
    refusals_as_statuses: bool = False
    """Report 131026 and 131047 as a ``failed`` status webhook after accepting the message (as
    the live API often does), instead of refusing the request."""
    media_url_ttl: float = MEDIA_URL_TTL
    media_capacity_bytes: int = MEDIA_CAPACITY_BYTES


RUNTIME_SETTINGS = frozenset(
    {
        "status_delay",
        "statuses",
        "throughput_per_second",
        "pair_limit",
        "pair_interval",
        "pair_burst",
        "enforce_window",
        "not_on_whatsapp",
        "refusals_as_statuses",
        "media_url_ttl",
    }
)
"""Settings ``PUT /_sim/config`` may change while the simulator runs."""


class Simulator:
    """The simulator's state: what it received, its faults and limits, its media, its webhooks."""

    def __init__(self, config: SimulatorConfig, faults: Faults | None = None):
        self.config = config
        self.faults = faults or Faults()
        self.received: deque[dict[str, Any]] = deque(maxlen=RECORD_SIZE)
        self.read_receipts: deque[dict[str, Any]] = deque(maxlen=RECORD_SIZE)
        self.requests_seen = 0
        self.refused: dict[int, int] = {}
        self.lock = threading.Lock()
        self.windows = ServiceWindows()
        self.media = MediaStore(config.media_capacity_bytes, config.media_url_ttl)
        self.random = random.Random()
        self._apply_limits()
        self.dispatcher = (
            WebhookDispatcher(config.webhook_url, config.webhook_secret)
            if config.webhook_url
            else None
        )

    def _apply_limits(self) -> None:
        rate = self.config.throughput_per_second
        self.throughput = TokenBucket(rate, max(1.0, rate)) if rate > 0 else None
        self.pairs = PairLimiter(self.config.pair_interval, self.config.pair_burst)
        self.media.url_ttl = self.config.media_url_ttl

    def configure(self, changes: dict[str, Any]) -> None:
        """Change the rules named in ``changes`` (see :data:`RUNTIME_SETTINGS`)."""
        if not isinstance(changes, dict):
            raise ValueError("config must be a JSON object")
        types = {f.name: f.type for f in fields(SimulatorConfig)}
        parsed = {}
        for name, value in changes.items():
            if name not in RUNTIME_SETTINGS:
                raise ValueError(f"{name!r} cannot be changed at run time")
            kind = types[name]
            if kind == "bool":
                if not isinstance(value, bool):
                    raise ValueError(f"{name} must be true or false")
            elif kind.startswith("set"):
                if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
                    raise ValueError(f"{name} must be a list of numbers")
                value = set(value)
            elif kind == "int":
                value = int(value)
            else:
                value = float(value)
                if value < 0:
                    raise ValueError(f"{name} must be at least 0")
            parsed[name] = value
        with self.lock:
            for name, value in parsed.items():
                setattr(self.config, name, value)
            self._apply_limits()

    def settings(self) -> dict[str, Any]:
        """The rules in force, JSON-safe, without credentials."""
        data = {name: getattr(self.config, name) for name in sorted(RUNTIME_SETTINGS)}
        data["not_on_whatsapp"] = sorted(data["not_on_whatsapp"])
        return data

    def envelope(self, value: dict[str, Any], field: str = "messages") -> dict[str, Any]:
        """Wrap a change ``value`` in Meta's webhook envelope for this number."""
        return envelope(
            self.config.business_account_id,
            self.config.phone_number_id,
            self.config.display_phone_number,
            value,
            field,
        )

    def status_webhook(
        self,
        wamid: str,
        recipient: str,
        status: str,
        category: str = "service",
        errors: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The webhook Meta sends when message ``wamid`` reaches ``status``."""
        item = status_item(wamid, recipient, status, category, errors)
        return self.envelope({"statuses": [item]})

    def customer_webhook(
        self, wa_id: str, name: str, message: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """A webhook carrying ``message`` from customer ``wa_id``; returns its wamid too."""
        wamid = new_wamid()
        body = {"from": wa_id, "id": wamid, "timestamp": str(int(time.time())), **message}
        value = {"contacts": [{"profile": {"name": name}, "wa_id": wa_id}], "messages": [body]}
        return wamid, self.envelope(value)

    def count_refusal(self, code: int) -> None:
        with self.lock:
            self.refused[code] = self.refused.get(code, 0) + 1

    def schedule_statuses(self, wamid: str, to: str, category: str, failure: int | None) -> None:
        """Queue the lifecycle webhooks of an accepted message, in the order the faults say."""
        if self.dispatcher is None or not self.config.statuses:
            return
        if failure is not None:
            lifecycle = [("failed", [status_error(failure)])]
        else:
            lifecycle = [("sent", None), ("delivered", None), ("read", None)]
        payloads = [
            self.status_webhook(wamid, to, status, category, errors) for status, errors in lifecycle
        ]
        if self.faults.duplicate_status_rate:
            payloads = [
                copy
                for payload in payloads
                for copy in (
                    (payload, payload)
                    if self.random.random() < self.faults.duplicate_status_rate
                    else (payload,)
                )
            ]
        order = self.faults.status_order
        delay = self.config.status_delay
        if order == "in_order":
            first, *rest = payloads
            self.dispatcher.schedule(first, delay, [(payload, delay) for payload in rest])
            return
        if order == "reversed":
            payloads.reverse()
        else:
            shuffled = payloads[:]
            while len(payloads) > 1 and shuffled == payloads:
                self.random.shuffle(shuffled)
            payloads = shuffled
        # Out of order on purpose: each delivered on its own, due one after another.
        for step, payload in enumerate(payloads, start=1):
            self.dispatcher.schedule(payload, delay * step)


def graph_error(
    code: int,
    details: str | None = None,
    http_status: int | None = None,
    subcode: int | None = None,
) -> Response:
    """A Flask response in Meta's error shape for ``code``."""
    response = jsonify(error_body(code, details, subcode))
    response.status_code = http_status or error_status(code)
    return response


def create_simulator(config: SimulatorConfig, faults: Faults | None = None) -> Flask:
    """The simulator's Flask application."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = UPLOAD_LIMIT_BYTES
    sim = Simulator(config, faults)
    app.extensions["simulator"] = sim
    expected_auth = f"Bearer {config.access_token}".encode()

    def authorised() -> bool:
        header = request.headers.get("Authorization", "").encode()
        return hmac.compare_digest(header, expected_auth)

    def refuse(code: int, details: str | None = None, **kwargs: Any) -> Response:
        sim.count_refusal(code)
        return graph_error(code, details, **kwargs)

    def unknown_object(object_id: str) -> Response:
        return refuse(
            100,
            f"Unsupported request - object with ID '{object_id}' does not exist, cannot be "
            "loaded due to missing permissions, or does not support this operation",
            subcode=33,
        )

    def injected_fault() -> Response | None:
        faults, rng = sim.faults, sim.random
        latency = faults.latency_seconds(rng)
        if faults.slow_rate and rng.random() < faults.slow_rate:
            latency += faults.slow_seconds
        if faults.timeout_rate and rng.random() < faults.timeout_rate:
            latency += faults.hang_seconds
        if latency and not pause(latency):
            # Nobody will read this: the request is dropped, as if Meta never saw it.
            return refuse(2, "The client hung up before the answer", http_status=503)
        if faults.error_rate and rng.random() < faults.error_rate:
            return refuse(1, "Injected failure", http_status=500)
        if faults.unavailable_rate and rng.random() < faults.unavailable_rate:
            return refuse(2, "Injected unavailability", http_status=503)
        if faults.throttle_rate and rng.random() < faults.throttle_rate:
            response = refuse(130429, "Injected throttling")
            response.headers["Retry-After"] = f"{faults.retry_after:g}"
            return response
        for code, rate in list(faults.error_codes.items()):
            if rng.random() < rate:
                return refuse(int(code), "Injected error")
        return None

    def pause(seconds: float) -> bool:
        """Wait ``seconds``; False as soon as the client hangs up, where the server can tell."""
        hung_up = request.environ.get("waitress.client_disconnected")
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if hung_up is not None and hung_up():
                return False
            time.sleep(min(left, HANG_UP_CHECK_SECONDS) if hung_up else left)
        return True

    @app.errorhandler(413)
    def too_large(_error):
        return refuse(131053, f"Upload larger than {UPLOAD_LIMIT_BYTES} bytes")

    @app.post("/<version>/<phone_number_id>/messages")
    def messages(version: str, phone_number_id: str):
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
        if (
            failure is None
            and sim.faults.failed_rate
            and sim.random.random() < sim.faults.failed_rate
        ):
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

    @app.post("/<version>/<phone_number_id>/media")
    def upload_media(version: str, phone_number_id: str):
        if not authorised():
            return refuse(190, "Invalid OAuth access token")
        if phone_number_id != config.phone_number_id:
            return unknown_object(phone_number_id)
        if request.form.get("messaging_product") != "whatsapp":
            return refuse(100, "Param messaging_product must be 'whatsapp'")
        upload = request.files.get("file")
        if upload is None:
            return refuse(100, "Param file is required (multipart/form-data)")
        injected = injected_fault()
        if injected is not None:
            return injected
        content = upload.read()
        mime_type = request.form.get("type") or upload.mimetype
        try:
            checked = check_media(content, mime_type)
        except MediaError as exc:
            return refuse(131053, str(exc))
        media = sim.media.put(content, checked.mime_type, phone_number_id, upload.filename)
        return jsonify({"id": media.id})

    def owned_media(media_id: str):
        """The media, or the error Meta gives for a missing one or another number's."""
        if not authorised():
            return None, refuse(190, "Invalid OAuth access token")
        media = sim.media.get(media_id)
        owner = request.args.get("phone_number_id")
        if media is None or (owner and owner != media.phone_number_id):
            return None, unknown_object(media_id)
        return media, None

    @app.get("/<version>/<media_id>")
    def get_media(version: str, media_id: str):
        media, refused = owned_media(media_id)
        if refused is not None:
            return refused
        injected = injected_fault()
        if injected is not None:
            return injected
        return jsonify(
            {
                "messaging_product": "whatsapp",
                "url": sim.media.download_url(request.host_url, media.id),
                "mime_type": media.mime_type,
                "sha256": media.sha256,
                "file_size": len(media.content),
                "id": media.id,
            }
        )

    @app.delete("/<version>/<media_id>")
    def delete_media(version: str, media_id: str):
        _, refused = owned_media(media_id)
        if refused is not None:
            return refused
        sim.media.delete(media_id)
        return jsonify({"success": True})

    @app.get(DOWNLOAD_PATH)
    def download_media():
        if not authorised():
            return Response("Unauthorized", status=401, mimetype="text/plain")
        media, reason = sim.media.resolve(
            request.args.get("mid", ""), request.args.get("ext", ""), request.args.get("hash", "")
        )
        if media is None:
            return Response(reason, status=404, mimetype="text/plain")
        return Response(media.content, mimetype=media.mime_type)

    # -- the simulator's own endpoints -------------------------------------------------------

    @app.get("/_sim/messages")
    def sent_messages():
        with sim.lock:
            return jsonify(
                {
                    "messages": list(sim.received),
                    "read_receipts": list(sim.read_receipts),
                    "requests": sim.requests_seen,
                    "refused": {str(code): count for code, count in sim.refused.items()},
                }
            )

    @app.get("/_sim/stats")
    def stats():
        with sim.lock:
            return jsonify({"received": len(sim.received), "requests": sim.requests_seen})

    @app.delete("/_sim/messages")
    def clear_messages():
        with sim.lock:
            sim.received.clear()
            sim.read_receipts.clear()
            sim.requests_seen = 0
            sim.refused.clear()
        return "", 204

    @app.get("/_sim/webhooks")
    def webhook_attempts():
        dispatcher = sim.dispatcher
        return jsonify(
            {
                "attempts": list(dispatcher.attempts) if dispatcher else [],
                "pending": dispatcher.pending() if dispatcher else 0,
                "dropped": dispatcher.dropped if dispatcher else 0,
            }
        )

    @app.get("/_sim/faults")
    def get_faults():
        return jsonify(sim.faults.to_dict())

    @app.put("/_sim/faults")
    def put_faults():
        try:
            sim.faults.update(request.get_json(force=True, silent=True))
        except (TypeError, ValueError) as exc:
            return jsonify({"error": str(exc)}), 400
        return jsonify(sim.faults.to_dict())

    @app.get("/_sim/config")
    def get_config():
        return jsonify(sim.settings())

    @app.put("/_sim/config")
    def put_config():
        try:
            sim.configure(request.get_json(force=True, silent=True))
        except (TypeError, ValueError) as exc:
            return jsonify({"error": str(exc)}), 400
        return jsonify(sim.settings())

    @app.get("/_sim/customers/<wa_id>/window")
    def get_window(wa_id: str):
        closes_at = sim.windows.closes_at(wa_id)
        return jsonify({"wa_id": wa_id, "open": sim.windows.is_open(wa_id), "closes_at": closes_at})

    @app.put("/_sim/customers/<wa_id>/window")
    def open_window(wa_id: str):
        """Open ``wa_id``'s window as if they wrote now, or at ``{"last_message_at": epoch}``."""
        data = request.get_json(force=True, silent=True) or {}
        at = data.get("last_message_at")
        if at is not None and (isinstance(at, bool) or not isinstance(at, int | float)):
            return jsonify({"error": "last_message_at must be a Unix time"}), 400
        sim.windows.open(wa_id, at)
        return get_window(wa_id)

    @app.delete("/_sim/customers/<wa_id>/window")
    def close_window(wa_id: str):
        sim.windows.close(wa_id)
        return get_window(wa_id)

    @app.post("/_sim/customers/<wa_id>/messages")
    def customer_says(wa_id: str):
        """A simulated customer writes: ``{"text": "Hola"}`` or a message object with its type.

        A media message without an ``id`` gets a file the simulator serves for download: the
        request's ``file`` (``{"content_base64", "mime_type", "filename"}``) or a sample.
        """
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

    @app.post("/_sim/events")
    def raw_event():
        """Deliver any change (``{"field": ..., "value": {...}}``), such as a group update."""
        data = request.get_json(force=True, silent=True)
        if not isinstance(data, dict) or not isinstance(data.get("value"), dict):
            return jsonify({"error": "send {'field': ..., 'value': {...}}"}), 400
        if sim.dispatcher is None:
            return jsonify({"error": "no webhook URL configured"}), 409
        payload = sim.envelope(data["value"], str(data.get("field", "messages")))
        return jsonify({"gateway_status": sim.dispatcher.deliver_now(payload)})

    @app.get("/_sim/health")
    def health():
        return jsonify({"status": "ok"})

    return app


_REFUSAL_DETAILS = {
    131026: "The recipient is not a WhatsApp user",
    131047: "More than 24 hours have passed since the customer last replied to this number",
}

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


SERVER_THREADS = 32
"""Requests the simulator works on at once; more wait for a thread. A request held by the
``timeout`` fault keeps its thread only until its client gives up (see ``pause``)."""

SERVER_CONNECTIONS = 1000
"""Client connections the simulator keeps open at once (each worker process pools its own)."""


def serve(config: SimulatorConfig, faults: Faults | None, host: str, port: int) -> None:
    """Serve the simulator on ``host:port`` until interrupted.

    One process (the simulator's state lives in its memory) under waitress: keep-alive
    connections, as Meta's API keeps them, so that a client pays for a connection once, and
    notice of a client that hung up, so that a hanging request lets go of its thread.
    """
    import waitress

    waitress.serve(
        create_simulator(config, faults),
        host=host,
        port=port,
        threads=SERVER_THREADS,
        connection_limit=SERVER_CONNECTIONS,
        channel_request_lookahead=1,  # what lets a request see that its client hung up
        ident="simulator",
        _quiet=True,
    )
