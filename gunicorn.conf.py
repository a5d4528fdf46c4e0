"""Gunicorn settings for the web process; gunicorn reads ``./gunicorn.conf.py`` by default, so the
Procfile's command and any other invocation from the project root pick these up."""

from __future__ import annotations

import os

from gunicorn.glogging import Logger

_level = os.environ.get("LOG_LEVEL", "INFO").upper()

# The gateway's formatter (JSON by default, redacted) for the app's logs and gunicorn's own.
# No access log: a subscription check's query string carries the verify token.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"gateway": {"()": "app.ops.logging.formatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "gateway",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": _level, "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
    },
}


class GatewayLogger(Logger):
    """Gunicorn's logger without its access log, which a ``logconfig_dict`` turns on: it built
    and dropped a record for every request, a twentieth of a webhook's CPU in the web process."""

    def access(self, resp, req, environ, request_time) -> None:
        """No access log (see above)."""


logger_class = GatewayLogger


def on_starting(server) -> None:
    """With METRICS_PORT set, listen on it too, beside the web's first address; the app serves
    /metrics only there (app/web/metrics.py), so the public port never shows it."""
    from app.config import get_settings

    port = get_settings().metrics_port
    if port:
        first = server.cfg.bind[0]
        host = "127.0.0.1" if first.startswith(("unix:", "fd://")) else first.rsplit(":", 1)[0]
        server.cfg.set("bind", [*server.cfg.bind, f"{host}:{port}"])


def child_exit(server, worker) -> None:
    """A web worker exited: drop its live gauges from the multiprocess metrics."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, directory)
