"""Signed webhook deliveries from the simulator to the gateway, retried the way Meta retries."""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from app.whatsapp.signature import SIGNATURE_HEADER, sign

log = logging.getLogger(__name__)

RETRY_BASE = 0.5
"""Seconds before the first redelivery of a webhook the gateway did not accept."""
RETRY_CAP = 10.0
"""Longest wait between redeliveries (Meta's own schedule stretches over 7 days)."""
ATTEMPT_LOG_SIZE = 50_000
"""Delivery attempts remembered for inspection; older ones are forgotten so memory stays flat."""
DELIVERY_THREADS = 4
"""Threads posting webhooks, so one slow answer does not hold up every other delivery."""
MAX_PENDING = 200_000
"""Deliveries waiting at most; beyond it new ones are dropped (and counted) so memory stays flat."""


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    payload: dict[str, Any] = field(compare=False)
    attempts: int = field(default=0, compare=False)
    then: Sequence[tuple[dict[str, Any], float]] = field(default=(), compare=False)


class WebhookDispatcher:
    """Posts signed webhooks to ``url`` in the order they fall due.

    A delivery answered with anything but 200 is retried with backoff up to ``max_attempts``
    times. A chain (``then``) is delivered one after another: each next payload is scheduled only
    once the previous one has been accepted (or given up), which keeps a message's statuses in
    order whatever the retries. Every attempt is logged in ``attempts`` for tests to read.
    """

    def __init__(
        self,
        url: str,
        secret: str,
        max_attempts: int = 8,
        timeout: float = 10.0,
        threads: int = DELIVERY_THREADS,
        max_pending: int = MAX_PENDING,
    ):
        self.url = url
        self.secret = secret
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.max_pending = max_pending
        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(pool_maxsize=threads + 2))
        self.session.mount("https://", HTTPAdapter(pool_maxsize=threads + 2))
        self.attempts: deque[dict[str, Any]] = deque(maxlen=ATTEMPT_LOG_SIZE)
        self.dropped = 0
        self._heap: list[_Delivery] = []
        self._in_flight = 0
        self._seq = itertools.count()
        self._cond = threading.Condition()
        for n in range(threads):
            threading.Thread(target=self._run, name=f"webhook-dispatcher-{n}", daemon=True).start()

    def schedule(
        self,
        payload: dict[str, Any],
        delay: float = 0.0,
        then: Sequence[tuple[dict[str, Any], float]] = (),
    ) -> bool:
        """Deliver ``payload`` after ``delay`` seconds, then each ``(payload, delay)`` of ``then``
        in turn. False (and nothing scheduled) when the queue is full."""
        delivery = _Delivery(time.monotonic() + delay, next(self._seq), payload, then=then)
        with self._cond:
            if len(self._heap) >= self.max_pending:
                self.dropped += 1
                log.warning("webhook queue full (%d); delivery dropped", self.max_pending)
                return False
            heapq.heappush(self._heap, delivery)
            self._cond.notify()
        return True

    def deliver_now(self, payload: dict[str, Any]) -> int | None:
        """Post ``payload`` at once and return the gateway's status; retried later if not 200."""
        status = self._post(payload, attempt=1)
        if status != 200:
            self._retry(_Delivery(0, next(self._seq), payload, attempts=1))
        return status

    def pending(self) -> int:
        """Deliveries waiting to be posted or retried, or being posted now."""
        with self._cond:
            return len(self._heap) + self._in_flight + sum(len(d.then) for d in self._heap)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0].due > time.monotonic():
                    timeout = self._heap[0].due - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                delivery = heapq.heappop(self._heap)
                self._in_flight += 1
            try:
                delivery.attempts += 1
                if self._post(delivery.payload, delivery.attempts) == 200:
                    self._continue(delivery)
                elif not self._retry(delivery):
                    self._continue(delivery)
            finally:
                with self._cond:
                    self._in_flight -= 1

    def _continue(self, delivery: _Delivery) -> None:
        if delivery.then:
            (payload, delay), *rest = delivery.then
            self.schedule(payload, delay, rest)

    def _retry(self, delivery: _Delivery) -> bool:
        if delivery.attempts >= self.max_attempts:
            log.warning("webhook given up after %d attempts", delivery.attempts)
            return False
        delay = min(RETRY_CAP, RETRY_BASE * 2 ** (delivery.attempts - 1))
        with self._cond:
            delivery.due = time.monotonic() + delay
            heapq.heappush(self._heap, delivery)
            self._cond.notify()
        return True

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
