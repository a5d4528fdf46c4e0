"""Retry policy shared by the gateway's tasks."""

from __future__ import annotations

import os
import random

import celeryconfig

RETRY_BASE_DELAY = float(os.environ.get("SEND_RETRY_BASE_DELAY", 2.0))
"""Seconds of the first retry's backoff ceiling; each further attempt doubles it."""

RETRY_MAX_DELAY = min(
    float(os.environ.get("SEND_RETRY_MAX_DELAY", 300.0)), celeryconfig.MAX_DEFERRAL
)
"""The longest backoff, capped by the broker's visibility timeout so Redis never redelivers a
task that is only waiting for its retry."""

MAX_ATTEMPTS = int(os.environ.get("SEND_MAX_ATTEMPTS", 8))
"""Attempts at a transient failure before the message is given up."""


def backoff_delay(
    retries: int, *, base: float = RETRY_BASE_DELAY, cap: float = RETRY_MAX_DELAY
) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**retries)]."""
    return random.uniform(0, min(cap, base * (2**retries)))


def deferral(server_delay: float | None, retries: int) -> float:
    """How long to wait before the next try: the server's ``Retry-After`` if it gave one, else a
    backoff; never longer than the broker allows."""
    if server_delay is not None:
        return min(max(server_delay, 0.0), RETRY_MAX_DELAY)
    return backoff_delay(retries)
