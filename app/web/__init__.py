"""The Flask receiver: ``create_app`` is the only way to get the web application."""

from __future__ import annotations

from typing import Any

from flask import Flask

from app.config import get_settings
from app.web.body import MAX_WEBHOOK_BYTES, GatewayRequest


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the web application. ``test_config`` may provide ``SETTINGS`` and Flask options."""
    app = Flask(__name__)
    app.request_class = GatewayRequest
    app.config["MAX_CONTENT_LENGTH"] = MAX_WEBHOOK_BYTES
    # No CORS, so no preflight: OPTIONS is refused (405 with Allow) like any undeclared method.
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    if test_config:
        app.config.update(test_config)
    if "SETTINGS" not in app.config:
        app.config["SETTINGS"] = get_settings()

    import workers
    from app.db import get_redis
    from app.web import health, metrics, openapi, v1, webhooks
    from app.web.errors import register_error_handlers
    from tasks.publish import TaskPublisher

    app.register_blueprint(webhooks.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(v1.bp)
    app.register_blueprint(openapi.bp)
    register_error_handlers(app)
    publisher = TaskPublisher(workers.app, get_redis(app.config["SETTINGS"].redis_url))
    app.wsgi_app = webhooks.WebhookReceiver(app, publisher)  # type: ignore[method-assign]
    return app
