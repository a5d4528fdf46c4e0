"""Injected failures, set at start (``--faults``) and changed at run time (``PUT /_sim/faults``).

Rates are probabilities per Graph request (``/messages`` sends, media upload and lookup; read
receipts and media downloads are spared). Status faults act on the webhooks of accepted messages.
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import asdict, dataclass, field, fields
from typing import Any

LATENCY_DISTRIBUTIONS = ("uniform", "normal", "exponential", "lognormal")
"""How ``latency_ms`` and ``latency_jitter_ms`` shape the added delay."""

Z_99 = 2.3263
"""The standard normal's 99th percentile: turns a lognormal's p99 into its spread."""

STATUS_ORDERS = ("in_order", "reversed", "shuffled")
"""The order in which a message's status webhooks are delivered."""


@dataclass
class Faults:
    """What goes wrong, and how often. All rates are probabilities from 0 to 1."""

    error_rate: float = 0.0
    """Answer 500 with Meta's transient error 1."""
    unavailable_rate: float = 0.0
    """Answer 503 with Meta's error 2 (service temporarily unavailable)."""
    throttle_rate: float = 0.0
    """Answer 429 with error 130429 and a ``Retry-After`` of ``retry_after`` seconds."""
    retry_after: float = 1.0
    timeout_rate: float = 0.0
    """Hang for ``hang_seconds`` before answering, past a client's read timeout."""
    hang_seconds: float = 30.0
    hang_recipients: list[str] = field(default_factory=list)
    """Sends to these numbers always hang for ``hang_seconds``, while every other one flows: a
    message whose send never returns (a poison message, once something kills the hung worker)."""
    slow_rate: float = 0.0
    """Answer normally, but only after ``slow_seconds``."""
    slow_seconds: float = 2.0
    latency_ms: float = 0.0
    """Added to every answer: the mean delay, spread by ``latency_jitter_ms``."""
    latency_jitter_ms: float = 0.0
    latency_distribution: str = "uniform"
    """``uniform`` (mean ± jitter), ``normal`` (jitter is the deviation), ``exponential``, or
    ``lognormal`` (``latency_ms`` is the median, ``latency_ms + latency_jitter_ms`` the 99th
    percentile: most answers near the median, a long tail, as Meta's)."""
    error_codes: dict[str, float] = field(default_factory=dict)
    """Graph error code to probability, answered at once, e.g. ``{"131026": 0.05}``."""
    failed_rate: float = 0.0
    """Accept the message, then send a ``failed`` status carrying error ``failed_code``."""
    failed_code: int = 131026
    status_order: str = "in_order"
    """``in_order``, ``reversed`` or ``shuffled`` status webhooks."""
    duplicate_status_rate: float = 0.0
    """Deliver a status webhook twice."""
    late_answer_rate: float = 0.0
    """Accept the message and send its status webhooks, but answer only after
    ``late_answer_seconds``: its statuses may reach the gateway before the answer does."""
    late_answer_seconds: float = 0.5

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def update(self, changes: dict[str, Any]) -> None:
        """Apply ``changes`` atomically; raise ValueError (and change nothing) if one is invalid."""
        if not isinstance(changes, dict):
            raise ValueError("faults must be a JSON object")
        types = {f.name: f.type for f in fields(self)}
        parsed: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in types:
                raise ValueError(f"unknown fault {name!r}")
            parsed[name] = _parse(name, types[name], value)
        with self._lock:
            for name, value in parsed.items():
                setattr(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def hangs_for(self, to: str) -> bool:
        """Whether a send to ``to`` hangs (see :attr:`hang_recipients`)."""
        return to in self.hang_recipients

    def latency_seconds(self, rng: random.Random = random) -> float:  # type: ignore[assignment]
        """One draw of the added latency, in seconds."""
        mean, jitter = self.latency_ms, self.latency_jitter_ms
        if not mean and not jitter:
            return 0.0
        if self.latency_distribution == "normal":
            value = rng.gauss(mean, jitter)
        elif self.latency_distribution == "lognormal":
            spread = math.log((mean + jitter) / mean) / Z_99 if mean > 0 else 0.0
            value = mean * math.exp(rng.gauss(0.0, spread)) if mean > 0 else 0.0
        elif self.latency_distribution == "exponential":
            value = rng.expovariate(1 / mean) if mean > 0 else 0.0
        else:
            value = mean + rng.uniform(-jitter, jitter)
        return max(0.0, value) / 1000


def _parse(name: str, kind: str, value: Any) -> Any:
    if kind.startswith("list"):
        if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
            raise ValueError(f"{name} must be a list of numbers")
        return list(value)
    if kind.startswith("dict"):
        if not isinstance(value, dict):
            raise ValueError(f"{name} must be an object of code to probability")
        return {str(int(code)): _rate(f"{name}[{code}]", rate) for code, rate in value.items()}
    if kind == "str":
        allowed = LATENCY_DISTRIBUTIONS if name == "latency_distribution" else STATUS_ORDERS
        if value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(allowed)}")
        return value
    if kind == "int":
        if isinstance(value, bool):
            raise ValueError(f"{name} must be an integer")
        return int(value)
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a number of at least 0")
    return _rate(name, number) if name.endswith("_rate") else number


def _rate(name: str, value: Any) -> float:
    rate = float(value)
    if not 0 <= rate <= 1:
        raise ValueError(f"{name} must be a probability from 0 to 1")
    return rate
