"""Per-process wiring for workers: configuration check at start and one HTTP session per process."""

from __future__ import annotations

import logging

from celery.signals import worker_init, worker_process_init

from app.config import get_settings
from app.whatsapp.client import reset_clients

log = logging.getLogger(__name__)


@worker_init.connect
def check_configuration(**_: object) -> None:
    """Refuse to start a worker whose environment is incomplete; the error names the variables."""
    get_settings().require_gateway()


@worker_process_init.connect
def fresh_http_session(**_: object) -> None:
    """A forked child must not share the parent's sockets: give it its own connection pool."""
    reset_clients()
