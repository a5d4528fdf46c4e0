"""``GET /metrics``: Prometheus exposition of every local process plus the deployment's state.

Open by default, like any exporter on a private network. Where the web port is reachable from
the internet (Meta must reach the webhook), set ``METRICS_BEARER_TOKEN`` and give Prometheus the
same token (``authorization: {credentials: ...}`` in its scrape config), or set ``METRICS_PORT``:
the web process then listens there too (``gunicorn.conf.py``) and serves ``/metrics`` on that
port alone, and nothing else on it.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import NotFound

import celeryconfig
from app.db import get_redis
from app.errors import ApiError
from app.ops.alerts import ALERT_NAMES
from app.ops.metrics import StateCollector, render
from app.ops.queues import KOMBU_PRIORITY_STEPS

bp = Blueprint("metrics", __name__)

QUEUES = [queue.name for queue in celeryconfig.task_queues]
PRIORITY_STEPS = celeryconfig.broker_transport_options.get("priority_steps", KOMBU_PRIORITY_STEPS)


@bp.before_app_request
def one_port_each() -> None:
    """With ``METRICS_PORT`` set, ``/metrics`` is served there only, and only ``/metrics`` is."""
    port = current_app.config["SETTINGS"].metrics_port
    if not port:
        return
    # SERVER_PORT is the port of the listener that accepted the connection, not the Host header.
    on_metrics_port = request.environ.get("SERVER_PORT") == str(port)
    if on_metrics_port != (request.endpoint == "metrics.metrics"):
        raise NotFound()


@bp.get("/metrics")
def metrics():
    """The metrics in Prometheus text format; 401 without the bearer token when one is set."""
    token = current_app.config["SETTINGS"].metrics_bearer_token
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise ApiError(401, "unauthorized", "a valid bearer token is required")
    redis_client = get_redis(current_app.config["SETTINGS"].redis_url)
    collector = StateCollector(
        redis_client, QUEUES, priority_steps=PRIORITY_STEPS, alert_names=ALERT_NAMES
    )
    body, content_type = render(collector)
    return Response(body, status=200, content_type=content_type)
