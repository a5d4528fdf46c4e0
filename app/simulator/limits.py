"""Meta's sending limits as the simulator enforces them: throughput, pair rate, service window.

Every structure answers in O(1) and holds a bounded number of entries, so the simulator keeps a
steady speed and memory however many recipients a benchmark invents.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

TRACKED_RECIPIENTS = 200_000
"""Recipients remembered per structure; the least recently seen is forgotten first (a forgotten
pair bucket is a full one, a forgotten window a closed one)."""

SERVICE_WINDOW_SECONDS = 24 * 3600
"""How long after a customer's last message the business may send free-form messages."""


class TokenBucket:
    """``rate`` tokens a second, holding at most ``burst``; thread-safe."""

    def __init__(self, rate: float, burst: float):
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Spend one token if there is one."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


class PairLimiter:
    """One token bucket per recipient: Meta's limit on messages to the same customer."""

    def __init__(self, interval: float, burst: int, capacity: int = TRACKED_RECIPIENTS):
        self.rate = 1.0 / interval if interval > 0 else float("inf")
        self.burst = float(burst)
        self.capacity = capacity
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, recipient: str) -> bool:
        """Spend one of ``recipient``'s tokens if there is one."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.pop(recipient, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            allowed = tokens >= 1
            self._buckets[recipient] = (tokens - 1 if allowed else tokens, now)
            if len(self._buckets) > self.capacity:
                self._buckets.popitem(last=False)
            return allowed


class ServiceWindows:
    """When each customer last wrote: the 24-hour customer-service window."""

    def __init__(self, length: float = SERVICE_WINDOW_SECONDS, capacity: int = TRACKED_RECIPIENTS):
        self.length = length
        self.capacity = capacity
        self._last_inbound: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, wa_id: str, at: float | None = None) -> None:
        """``wa_id`` wrote at ``at`` (now by default): the window runs from then."""
        with self._lock:
            self._last_inbound.pop(wa_id, None)
            self._last_inbound[wa_id] = time.time() if at is None else at
            if len(self._last_inbound) > self.capacity:
                self._last_inbound.popitem(last=False)

    def close(self, wa_id: str) -> None:
        with self._lock:
            self._last_inbound.pop(wa_id, None)

    def closes_at(self, wa_id: str) -> float | None:
        """When ``wa_id``'s window closes (or closed), or None if they never wrote."""
        with self._lock:
            last = self._last_inbound.get(wa_id)
        return None if last is None else last + self.length

    def is_open(self, wa_id: str) -> bool:
        closes = self.closes_at(wa_id)
        return closes is not None and time.time() < closes
