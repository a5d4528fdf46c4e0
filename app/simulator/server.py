"""The Cloud API simulator: a real HTTP server that plays Meta's Graph API.

Graph endpoints answer with Meta's response and error shapes and follow Meta's rules (the message
schema, throughput and pair limits, the customer-service window, numbers not on WhatsApp, media
with expiring download URLs): ``messages`` and ``media``. Endpoints under ``/_sim/`` are the
simulator's own (``control``): what it received, its faults and rules, and simulated customers
who write to the gateway. The state they share is one :class:`Simulator` (``state``).
"""

from __future__ import annotations

from flask import Flask

from app.simulator import control, media, messages, templates
from app.simulator.faults import Faults
from app.simulator.state import EXTENSION, Simulator, SimulatorConfig

__all__ = ["Faults", "Simulator", "SimulatorConfig", "create_simulator", "serve"]


def create_simulator(config: SimulatorConfig, faults: Faults | None = None) -> Flask:
    """The simulator's Flask application."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = media.UPLOAD_LIMIT_BYTES
    app.extensions[EXTENSION] = Simulator(config, faults)
    app.register_blueprint(messages.bp)
    app.register_blueprint(media.bp)
    app.register_blueprint(templates.bp)
    app.register_blueprint(control.bp)
    return app


SERVER_THREADS = 64
"""Requests the simulator works on at once; more wait for a thread. Meta serves far more; 64 keeps
the simulator from being the limit under latency (80 messages/s at 300 ms is 24 in flight per
number). A request held by the ``timeout`` fault keeps its thread only until its client gives up
(see ``pause``)."""

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
