"""Shared fixtures. The session gets a Redis of its own, started before test modules are imported
(Celery's settings read ``REDIS_URL`` once), and tests flush only that server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml

from tests.stack import TEST_CREDENTIALS, RedisServer

SPEC_PATH = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "specs"
    / ("whatsapp-business-messaging-api_v23.0.yaml")
)
_session_redis: RedisServer | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _session_redis
    _session_redis = RedisServer(appendonly=False).start()
    os.environ.update(TEST_CREDENTIALS)
    os.environ["REDIS_URL"] = _session_redis.url
    os.environ["WHATSAPP_API_BASE_URL"] = "http://127.0.0.1:9"  # nothing listens: no real Meta


def pytest_unconfigure(config: pytest.Config) -> None:
    if _session_redis is not None:
        _session_redis.close()


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Settings are read once per process; a test that changes the environment sees it read
    again, and leaves nothing cached for the next test."""
    from app.config import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """The session Redis (ours alone), empty before and after the test."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def spec() -> dict:
    """Meta's OpenAPI description of the Cloud API, from ../shared/specs/."""
    if not SPEC_PATH.exists():
        pytest.skip(f"Meta's spec is not at {SPEC_PATH} (a clone outside the usual layout)")
    # The C loader, where PyYAML has it, reads the 30,000-line spec in a fraction of the time.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(SPEC_PATH.read_text(), Loader=loader)  # noqa: S506 - a safe loader


@pytest.fixture(scope="session")
def webhook_examples(spec: dict) -> dict[str, dict]:
    """The 16 webhook payload examples of Meta's spec, by name."""
    post = spec["paths"]["/whatsapp/webhooks"]["post"]
    examples = post["requestBody"]["content"]["application/json"]["examples"]
    return {name: example["value"] for name, example in examples.items()}


@pytest.fixture
def second_number(redis_client, monkeypatch):
    """A second sending number, registered with its own token, and the simulator that plays it.

    Yields ``(simulator, settings)``: ``settings`` point the Graph API at that simulator, which
    accepts only the second number's token and path, so a request that reaches it with success
    proves it carried them.
    """
    from app.config import get_settings, load_settings
    from app.credentials import NumberRegistry, SendingNumber, generate_key, load_cipher
    from app.whatsapp.client import reset_clients
    from tests.stack import SECOND_NUMBER, SECOND_TOKEN, SimulatorThread

    monkeypatch.setenv("GATEWAY_ENCRYPTION_KEYS", generate_key())
    get_settings.cache_clear()  # read again, with the key
    NumberRegistry(redis_client, load_cipher()).add(SendingNumber(SECOND_NUMBER), SECOND_TOKEN)
    sim = SimulatorThread(access_token=SECOND_TOKEN, phone_number_id=SECOND_NUMBER)
    settings = load_settings({**os.environ, "WHATSAPP_API_BASE_URL": sim.url}, env_file=None)
    reset_clients()
    yield sim, settings
    reset_clients()
    sim.close()
