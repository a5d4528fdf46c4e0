"""Shared fixtures. Tests run in two tiers.

The session gets a Redis of its own, and tests flush only that server. Its URL is chosen and set
in ``REDIS_URL`` before test modules are imported (Celery's settings read it once), and the
server starts just before the first test that is not marked ``unit``.

The fast unit tier runs the Lua scripts and Redis-backed stores on fakeredis, with no
``redis-server`` at all: ``pytest -m unit`` (``make test-unit`` also drops it from the PATH to
prove it). A test marked ``any_redis`` (or in a module so marked) that uses ``redis_client`` runs
twice: on fakeredis, marked ``unit``, and on the real server. One there that needs what only a
real server gives is marked ``real_redis`` with its reason.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import fakeredis
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
FAKE, REAL = "fake", "real"
"""The two backends a test marked ``any_redis`` runs on."""

MARKERS = (
    "unit: runs without redis-server (fakeredis or no Redis at all); `pytest -m unit` runs the tier",
    "any_redis: uses plain Redis commands only, so its redis_client tests run on fakeredis too",
    "real_redis(reason): in an any_redis module, needs a real redis-server; the reason says why",
)
_session_redis: RedisServer | None = None
_port_hold: socket.socket | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _session_redis, _port_hold
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    # The port stays bound until the server starts, so no other process can take it meanwhile.
    _port_hold = socket.socket()
    _port_hold.bind(("127.0.0.1", 0))
    _session_redis = RedisServer(appendonly=False, port=_port_hold.getsockname()[1])
    os.environ.update(TEST_CREDENTIALS)
    os.environ["REDIS_URL"] = _session_redis.url
    os.environ["WHATSAPP_API_BASE_URL"] = "http://127.0.0.1:9"  # nothing listens: no real Meta


def pytest_unconfigure(config: pytest.Config) -> None:
    if _port_hold is not None:
        _port_hold.close()
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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each ``any_redis`` test that uses ``redis_client`` on both backends."""
    if "redis_client" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("any_redis") is None:
        return
    if metafunc.definition.get_closest_marker("real_redis") is not None:
        return
    backends = [pytest.param(FAKE, marks=pytest.mark.unit), REAL]
    metafunc.parametrize("redis_client", backends, indirect=True, ids=[FAKE, REAL])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """An ``any_redis`` test that takes no Redis at all belongs to the unit tier."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if (
            item.get_closest_marker("any_redis") is not None
            and item.get_closest_marker("real_redis") is None
            and "redis_client" not in fixtures
        ):
            item.add_marker(pytest.mark.unit)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Start the session Redis before the first test that may need it."""
    global _port_hold
    if item.get_closest_marker("unit") is not None or _session_redis is None:
        return
    if _session_redis.proc is None:
        if _port_hold is not None:
            _port_hold.close()
            _port_hold = None
        try:
            _session_redis.start()
        except RuntimeError as error:  # no redis-server: say once what still runs without it
            pytest.exit(f"{error}; `pytest -m unit` runs the tests that need none", returncode=1)


@pytest.fixture
def redis_client(request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    """The session Redis (ours alone), empty before and after the test; or, for the ``fake``
    backend of an ``any_redis`` test, a fakeredis server of the test's own."""
    if getattr(request, "param", REAL) == FAKE:
        client = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
        yield client
        client.close()
        return
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
