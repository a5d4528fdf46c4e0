"""The ``/v1`` API as one blueprint: each resource keeps its module and is nested here, and one
``before_request`` authenticates every request (:func:`app.web.auth.authenticate`)."""

from __future__ import annotations

from flask import Blueprint

from app.web import (
    alerts,
    analytics,
    campaigns,
    conversations,
    customers,
    dead_letters,
    events,
    messages,
    templates,
)
from app.web.auth import authenticate

bp = Blueprint("v1", __name__, url_prefix="/v1")
bp.before_request(authenticate)
bp.register_blueprint(messages.bp)
bp.register_blueprint(dead_letters.bp)
bp.register_blueprint(conversations.bp)
bp.register_blueprint(alerts.bp)
bp.register_blueprint(templates.bp)
bp.register_blueprint(customers.bp)
bp.register_blueprint(campaigns.bp)
bp.register_blueprint(analytics.bp)
bp.register_blueprint(events.bp)
