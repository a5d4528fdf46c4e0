"""Liveness (``/healthz``: the process answers) and readiness (``/readyz``: it can do its job)."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from app import keys
from app.db import get_redis

bp = Blueprint("health", __name__)

BROKER_CHECK_TIMEOUT = 2.0
"""Seconds the readiness check waits for a broker connection before calling it unavailable."""


@bp.get("/healthz")
def healthz():
    """200 while the web process can answer at all."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """200 when Redis answers and the broker accepts a write; 503 otherwise, naming the check.

    A load balancer stops sending webhooks to a web process that could only answer 503 to them.
    """
    checks = {"redis": _check_redis(), "broker": _check_broker()}
    ready = all(result == "ok" for result in checks.values())
    response = jsonify({"status": "ready" if ready else "unavailable", "checks": checks})
    if not ready:
        response.status_code = 503
        response.headers["Retry-After"] = "5"
    return response


def _check_redis() -> str:
    try:
        get_redis(current_app.config["SETTINGS"].redis_url).ping()
    except (RedisError, OSError) as exc:
        return f"error: {type(exc).__name__}"  # the class only: a message could hold the URL
    return "ok"


def _check_broker() -> str:
    """Write through the broker's own connection: a read-only replica or a full Redis fails here."""
    import workers

    try:
        with workers.app.connection_for_write() as connection:
            connection.ensure_connection(
                max_retries=1, interval_start=0, timeout=BROKER_CHECK_TIMEOUT
            )
            client = connection.default_channel.client
            client.set(keys.OPS_READINESS_PROBE, str(time.time()), ex=keys.OPS_READINESS_PROBE_TTL)
    except (RedisError, OperationalError, OSError) as exc:
        return f"error: {type(exc).__name__}"
    return "ok"
