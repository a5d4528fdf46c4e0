"""How long to wait before trying a send again, and when to stop.

Three budgets, kept apart so that one kind of trouble cannot use up another's:

- transient failures (5xx, timeouts, connection errors): exponential backoff with full jitter,
  at most ``SEND_MAX_ATTEMPTS`` of them;
- Meta's throttling (429, 130429, 131056...): the ``Retry-After`` Meta gave, else the backoff,
  at most ``SEND_MAX_THROTTLED`` refusals, and none of them counted as failures;
- the gateway's own rate limits: not a failure at all, and not counted.

Every delay is capped by ``max_deferral``, which the task layer derives from the broker's
visibility timeout: a retry that waited longer would be redelivered by Redis while still waiting.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from app.config import Settings, get_settings

RETRY_BASE_DELAY = get_settings().send_retry_base_delay
"""Seconds of the first retry's backoff ceiling; each further failure doubles it."""

RETRY_MAX_DELAY = get_settings().send_retry_max_delay
"""The longest backoff asked for (it is also capped by the visibility timeout)."""

MAX_ATTEMPTS = get_settings().send_max_attempts
"""Transient failures of one message before it is dead-lettered as ``retries_exhausted``."""

MAX_THROTTLED = get_settings().send_max_throttled
"""Throttling answers from Meta for one message before it is dead-lettered as ``throttled``."""


@dataclass(frozen=True)
class RetryPolicy:
    """The retry budgets and delays of sends; ``max_deferral`` bounds every delay."""

    max_deferral: float
    max_attempts: int = MAX_ATTEMPTS
    max_throttled: int = MAX_THROTTLED
    base_delay: float = RETRY_BASE_DELAY
    max_delay: float = RETRY_MAX_DELAY

    def __post_init__(self) -> None:
        if self.max_deferral <= 0:
            raise ValueError("max_deferral must be positive")
        if self.max_attempts < 1 or self.max_throttled < 1:
            raise ValueError("SEND_MAX_ATTEMPTS and SEND_MAX_THROTTLED must be at least 1")

    @classmethod
    def from_settings(cls, max_deferral: float, settings: Settings | None = None):
        """The policy configured by ``SEND_MAX_ATTEMPTS``, ``SEND_MAX_THROTTLED`` and the delays."""
        settings = settings or get_settings()
        return cls(
            max_deferral=max_deferral,
            max_attempts=settings.send_max_attempts,
            max_throttled=settings.send_max_throttled,
            base_delay=settings.send_retry_base_delay,
            max_delay=settings.send_retry_max_delay,
        )

    @property
    def cap(self) -> float:
        """The longest backoff: ``max_delay``, and never past ``max_deferral``."""
        return min(self.max_delay, self.max_deferral)

    def bounded(self, seconds: float) -> float:
        """``seconds`` within [0, max_deferral]: for waits someone else named (Meta, a limiter)."""
        return min(max(seconds, 0.0), self.max_deferral)

    def backoff(self, failures: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**(failures - 1))], after ``failures``."""
        exponent = min(max(failures - 1, 0), 62)  # no float overflow however long it fails
        return random.uniform(0, min(self.cap, self.base_delay * (2**exponent)))

    def after_throttle(self, retry_after: float | None, throttles: int) -> float:
        """Meta's ``Retry-After`` if it gave one (plus a little jitter, so a crowd told the same
        second does not come back in the same millisecond), else the backoff."""
        if retry_after is not None:
            return self.bounded(retry_after + random.uniform(0, min(1.0, retry_after * 0.1)))
        return self.backoff(throttles)
