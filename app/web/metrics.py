"""``GET /metrics``: Prometheus exposition of every local process plus the deployment's state.

Open by default, like any exporter on a private network. Where the web port is reachable from
the internet (Meta must reach the webhook), set ``METRICS_BEARER_TOKEN`` and give Prometheus the
same token (``authorization: {credentials: ...}`` in its scrape config), or block ``/metrics`` at
the proxy.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, request

import celeryconfig
from app.db import get_redis
from app.errors import ApiError
from app.ops.alerts import ALERT_NAMES
from app.ops.metrics import StateCollector, render
from app.ops.queues import KOMBU_PRIORITY_STEPS

bp = Blueprint("metrics", __name__)

QUEUES = [queue.name for queue in celeryconfig.task_queues]
PRIORITY_STEPS = celeryconfig.broker_transport_options.get("priority_steps", KOMBU_PRIORITY_STEPS)


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
