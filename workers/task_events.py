"""Task events on a lease: a worker sends them while a monitor keeps asking, then stops.

Task events are off by default (``celeryconfig``). Flower asks every worker for them every few
seconds while it runs (``enable_events``); Celery's worker then sends them until it restarts or
hears ``disable_events``, so a Flower looked at once and stopped, or killed, left every worker
paying three publishes a task for good. This worker turns them off again once nobody has asked
for ``TASK_EVENTS_LEASE`` seconds: while a Flower runs, its requests renew the lease, and
``celery -A workers control enable_events`` lends them for one lease. A worker whose events were
on before anyone asked (started with ``-E``) keeps them.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.worker import control

import celeryconfig

log = logging.getLogger(__name__)

_lease: dict[str, Any] = {"expiry": None, "kept": None}
"""This worker's lease: the timer entry that ends it, and whether its events stay regardless."""


@control.control_command(name="enable_events")
def enable_events(state: Any) -> dict:
    """Celery's ``enable_events``, which renews this worker's lease on task events."""
    dispatcher = state.consumer.event_dispatcher
    if _lease["kept"] is None:  # the first request: were they on before anyone asked?
        # No groups at all means every group is sent (-E); else task events are a group.
        _lease["kept"] = not dispatcher.groups or "task" in dispatcher.groups
    reply = control.enable_events(state)
    if not _lease["kept"]:
        if _lease["expiry"] is not None:
            _lease["expiry"].cancel()
        _lease["expiry"] = state.consumer.timer.call_after(
            celeryconfig.TASK_EVENTS_LEASE, _end_lease, (state,)
        )
    return reply


def _end_lease(state: Any) -> None:
    _lease["expiry"] = None
    control.disable_events(state)
    log.info("task events off: nobody asked for them in %.0f s", celeryconfig.TASK_EVENTS_LEASE)
