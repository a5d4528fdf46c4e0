"""The Flask receiver: ``create_app`` is the only way to get the web application."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from app.config import get_settings

MAX_WEBHOOK_BYTES = 3 * 1024 * 1024
"""Meta's largest webhook payload is 3 MiB; anything larger is refused with 413 before it is read."""


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the web application. ``test_config`` may provide ``SETTINGS`` and Flask options."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_WEBHOOK_BYTES
    # No CORS, so no preflight: OPTIONS is refused (405 with Allow) like any undeclared method.
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    if test_config:
        app.config.update(test_config)
    if "SETTINGS" not in app.config:
        app.config["SETTINGS"] = get_settings()

    import workers
    from app.db import get_redis
    from app.web import (
        alerts,
        conversations,
        dead_letters,
        health,
        messages,
        metrics,
        openapi,
        webhooks,
    )
    from tasks.publish import TaskPublisher

    app.extensions["task_publisher"] = TaskPublisher(
        workers.app, get_redis(app.config["SETTINGS"].redis_url)
    )

    app.register_blueprint(webhooks.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(alerts.bp)
    app.register_blueprint(conversations.bp)
    app.register_blueprint(messages.bp)
    app.register_blueprint(dead_letters.bp)
    app.register_blueprint(openapi.bp)
    app.register_error_handler(HTTPException, _http_error)
    return app


def error_response(status: int, code: str, message: str):
    """The JSON error body every endpoint uses: ``{"error": {"code": ..., "message": ...}}``."""
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def _http_error(exc: HTTPException):
    code = (exc.name or "error").lower().replace(" ", "_")
    response = error_response(exc.code or 500, code, exc.description or exc.name)
    # Keep the headers the error carries (Allow on a 405), but not its HTML content type.
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response
