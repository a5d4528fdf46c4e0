"""Signed webhook deliveries from the simulator to the gateway, retried the way Meta retries."""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import requests

from app.whatsapp.signature import SIGNATURE_HEADER, sign

log = logging.getLogger(__name__)

RETRY_BASE = 0.5
"""Seconds before the first redelivery of a webhook the gateway did not accept."""
RETRY_CAP = 10.0
"""Longest wait between redeliveries (Meta's own schedule stretches over 7 days)."""
ATTEMPT_LOG_SIZE = 50_000
"""Delivery attempts remembered for inspection; older ones are forgotten so memory stays flat."""


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    payload: dict[str, Any] = field(compare=False)
    attempts: int = field(default=0, compare=False)


class WebhookDispatcher:
    """Posts signed webhooks to ``url`` from one thread, in the order they fall due.

    A delivery answered with anything but 200 is retried with backoff up to ``max_attempts``
    times. Every attempt is logged in ``log`` for tests to read.
    """

    def __init__(self, url: str, secret: str, max_attempts: int = 8, timeout: float = 10.0):
        self.url = url
        self.secret = secret
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.session = requests.Session()
        self.attempts: deque[dict[str, Any]] = deque(maxlen=ATTEMPT_LOG_SIZE)
        self._heap: list[_Delivery] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="webhook-dispatcher", daemon=True)
        self._thread.start()

    def schedule(self, payload: dict[str, Any], delay: float = 0.0) -> None:
        """Deliver ``payload`` after ``delay`` seconds."""
        with self._cond:
            heapq.heappush(
                self._heap, _Delivery(time.monotonic() + delay, next(self._seq), payload)
            )
            self._cond.notify()

    def deliver_now(self, payload: dict[str, Any]) -> int | None:
        """Post ``payload`` at once and return the gateway's status; retried later if not 200."""
        status = self._post(payload, attempt=1)
        if status != 200:
            self._retry(_Delivery(0, next(self._seq), payload, attempts=1))
        return status

    def pending(self) -> int:
        """Deliveries waiting to be posted or retried."""
        with self._cond:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0].due > time.monotonic():
                    timeout = self._heap[0].due - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                delivery = heapq.heappop(self._heap)
            delivery.attempts += 1
            if self._post(delivery.payload, delivery.attempts) != 200:
                self._retry(delivery)

    def _retry(self, delivery: _Delivery) -> None:
        if delivery.attempts >= self.max_attempts:
            log.warning("webhook given up after %d attempts", delivery.attempts)
            return
        delay = min(RETRY_CAP, RETRY_BASE * 2 ** (delivery.attempts - 1))
        with self._cond:
            delivery.due = time.monotonic() + delay
            heapq.heappush(self._heap, delivery)
            self._cond.notify()

    def _post(self, payload: dict[str, Any], attempt: int) -> int | None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, self.secret)}
        try:
            status = self.session.post(
                self.url, data=body, headers=headers, timeout=self.timeout
            ).status_code
        except requests.RequestException as exc:
            log.info("webhook attempt %d failed: %s", attempt, type(exc).__name__)
            status = None
        self.attempts.append(
            {"at": time.time(), "attempt": attempt, "status": status, "payload": payload}
        )
        return status
