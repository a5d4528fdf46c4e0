"""What every Graph endpoint of the simulator does first: check the token, refuse in Meta's error
shape (counting the refusal), and apply the injected faults."""

from __future__ import annotations

import hmac
import time
from typing import Any

from flask import Response, jsonify, request

from app.simulator.meta import error_body, error_status
from app.simulator.state import current_simulator

HANG_UP_CHECK_SECONDS = 0.1
"""How often a delayed answer checks whether its client is still there."""


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


def authorised() -> bool:
    """Whether the request carries the simulator's access token."""
    expected = f"Bearer {current_simulator().config.access_token}".encode()
    return hmac.compare_digest(request.headers.get("Authorization", "").encode(), expected)


def refuse(code: int, details: str | None = None, **kwargs: Any) -> Response:
    """Meta's error ``code`` for this request, counted among the refusals."""
    current_simulator().count_refusal(code)
    return graph_error(code, details, **kwargs)


def unknown_object(object_id: str) -> Response:
    """Meta's answer for an id that does not exist, or is not this token's to see."""
    return refuse(
        100,
        f"Unsupported request - object with ID '{object_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation",
        subcode=33,
    )


def injected_fault() -> Response | None:
    """The failure the faults in force pick for this request, after their latency, or None."""
    sim = current_simulator()
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
