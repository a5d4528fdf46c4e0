"""Fixtures of the simulator's tests."""

from __future__ import annotations

import pytest

from tests.simulator.receiver import WebhookReceiver
from tests.stack import SimulatorThread


@pytest.fixture
def meta():
    """The simulator with all of Meta's rules on, delivering webhooks to a receiver."""
    receiver = WebhookReceiver()
    server = SimulatorThread(webhook_url=receiver.url, meta_rules=True, status_delay=0.01)
    yield server, receiver
    server.close()
    receiver.close()
