"""The Flask receiver: ``create_app`` is the only way to get the web application."""

from __future__ import annotations

from typing import Any

from flask import Flask, Request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream

from app.config import get_settings

MAX_WEBHOOK_BYTES = 3 * 1024 * 1024
"""Meta's largest webhook payload is 3 MiB; anything larger is refused with 413 before it is read."""


class BoundedBody(LimitedStream):
    """A chunked body read up to ``max_bytes``: one byte more is 413, where Werkzeug's stream
    stops at the limit and hands the view a body cut short (a webhook then fails its signature)."""

    def __init__(self, stream: Any, max_bytes: int):
        super().__init__(stream, max_bytes + 1, is_max=True)

    def readinto(self, b: Any) -> int | None:  # type: ignore[override]
        size = super().readinto(b)
        if self.tell() >= self.limit:
            raise RequestEntityTooLarge()
        return size


class GatewayRequest(Request):
    """Flask's request, with a body past ``max_content_length`` refused (413) whether or not it
    declares its length."""

    @cached_property
    def stream(self) -> Any:
        """The body as Werkzeug gives it; a chunked one is bounded by :class:`BoundedBody`."""
        limit = self.max_content_length
        # Only a server that ends chunked bodies itself sets wsgi.input_terminated; without it
        # Werkzeug's own (empty) stream is the safe one.
        chunked = self.content_length is None and self.environ.get("wsgi.input_terminated")
        if limit is None or not chunked:
            return super().stream
        return BoundedBody(self.environ["wsgi.input"], limit)


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
