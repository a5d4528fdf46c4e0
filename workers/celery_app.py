"""The gateway's one Celery app, configured from ``celeryconfig``."""

from __future__ import annotations

from celery import Celery

app = Celery(
    "wa_gateway",
    include=[
        "tasks.inbound",
        "tasks.context",
        "tasks.outbound",
        "tasks.alerts",
        "tasks.campaigns",
        "tasks.events",
    ],
)
app.config_from_object("celeryconfig")
app.set_default()

import workers.observability  # noqa: E402,F401  (logs, metrics and heartbeats)
import workers.process  # noqa: E402,F401  (connects the per-process signal handlers)
import workers.task_events  # noqa: E402,F401  (task events on a lease)
