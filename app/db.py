"""The process's Redis connection pool, and the replication check behind an acknowledgement.

``REDIS_URL`` names either one Redis (``redis://``, ``rediss://``, ``unix://``) or the Sentinels
that watch a master (``sentinel://h1:26379;sentinel://h2:26379``, the form kombu's broker takes,
with the master's name in ``REDIS_SENTINEL_MASTER``). A Sentinel client asks the Sentinels where
the master is whenever it opens a connection, and drops its connections when the master moves or
answers as a read-only replica: every caller follows a failover without a restart. It follows the
Sentinel whose view is the newest (see :class:`NewestSentinel`), as the broker does.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError, Sentinel

from app import keys
from app.config import get_settings
from app.errors import ReplicationTimeout

SOCKET_TIMEOUT = 2.0
"""Seconds before a Redis call fails; short, so a Redis outage turns into a quick 503."""

SENTINEL_PORT = 26379
"""Sentinel's own port, for a ``sentinel://host`` that names none (as kombu assumes)."""


SILENT_SENTINEL_SKIP = 10.0
"""Seconds a Sentinel that did not answer is left out of master discovery: a Sentinel host that is
down then costs one new connection its timeout every ten seconds, not every new connection."""

_silent_until: dict[tuple[str, int], float] = {}
"""When each Sentinel that did not answer is asked again, by address (this process's)."""


class NewestSentinel(Sentinel):
    """A Sentinel client that follows the master of the newest configuration the Sentinels hold.

    redis-py connects to the master named by the first Sentinel that answers with one that looks
    up. Just after a failover, a Sentinel that has not yet heard of it still names the old master;
    once that master is restarted it looks up, and it stays an empty master for about ten seconds,
    until the Sentinels make it a replica and it drops what it was given. A process that connected
    then would write where nothing is kept, while the rest of the gateway works on the new master.
    This client asks every Sentinel and follows the answer with the highest ``config-epoch``,
    which each failover raises: one Sentinel that heard of the failover outweighs any that did not.
    A Sentinel still carrying out a failover names the master being replaced, so it names none.
    One that did not answer is skipped for ``SILENT_SENTINEL_SKIP`` seconds, unless all are.
    """

    def discover_master(self, service_name: str) -> tuple[str, int]:
        now = time.monotonic()
        asked = [s for s in self.sentinels if _silent_until.get(_address(s), 0.0) <= now]
        states: list[dict[str, Any]] = []
        errors = []
        for sentinel in asked or self.sentinels:
            try:
                state = sentinel.sentinel_masters().get(service_name)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                _silent_until[_address(sentinel)] = time.monotonic() + SILENT_SENTINEL_SKIP
                errors.append(f"{sentinel} - {exc!r}")
                continue
            _silent_until.pop(_address(sentinel), None)
            if state is not None:
                states.append(state)
        if states:
            newest = max(int(state.get("config-epoch", 0)) for state in states)
            for state in states:
                if (
                    int(state.get("config-epoch", 0)) == newest
                    and "failover_in_progress" not in state["flags"].split(",")
                    and self.check_master_state(state, service_name)
                ):
                    return state["ip"], state["port"]
        detail = f": {', '.join(errors)}" if errors else ""
        raise MasterNotFoundError(f"No master found for {service_name!r}{detail}")


def _address(sentinel: redis.Redis) -> tuple[str, int]:
    kwargs = sentinel.connection_pool.connection_kwargs
    return kwargs.get("host", ""), kwargs.get("port", SENTINEL_PORT)


def is_sentinel_url(url: str) -> bool:
    """Whether ``url`` names Sentinels rather than a Redis."""
    return url.startswith("sentinel://")


def sentinel_addresses(url: str) -> list[tuple[str, int]]:
    """The (host, port) of each Sentinel of ``sentinel://h1:p1;sentinel://h2:p2``."""
    return [
        (parts.hostname or "", parts.port or SENTINEL_PORT)
        for parts in map(urlsplit, url.split(";"))
    ]


def broker_url(url: str, password: str) -> str:
    """``url`` as Celery's broker takes it: ``password`` written into each of its URLs that
    carries none. kombu reads each Sentinel URL afresh when it moves on to the next one, so a
    password given beside the URL would be dropped at the first Sentinel that fails to answer."""
    if not password:
        return url
    parts = []
    for part in url.split(";"):
        split = urlsplit(part)
        if split.password is None and split.scheme != "unix":
            part = split._replace(netloc=f":{quote(password, safe='')}@{split.netloc}").geturl()
        parts.append(part)
    return ";".join(parts)


def get_redis(url: str) -> redis.Redis:
    """A client for ``url`` whose pool is shared by every caller in this process.

    For a Sentinel URL, the master name and passwords come from the settings."""
    settings = get_settings()
    if is_sentinel_url(url):
        return _master_client(
            url,
            settings.redis_sentinel_master,
            settings.redis_password,
            settings.redis_sentinel_password,
        )
    return _client(url, settings.redis_password)


_OPTIONS = {
    "decode_responses": True,
    "socket_timeout": SOCKET_TIMEOUT,
    "socket_connect_timeout": SOCKET_TIMEOUT,
    "health_check_interval": 30,
}


@lru_cache(maxsize=8)
def _client(url: str, password: str) -> redis.Redis:
    # A password in the URL wins over REDIS_PASSWORD (redis-py lets URL values override).
    return redis.Redis.from_url(url, password=password or None, **_OPTIONS)


@lru_cache(maxsize=8)
def _master_client(url: str, master: str, password: str, sentinel_password: str) -> redis.Redis:
    sentinels = NewestSentinel(
        sentinel_addresses(url), sentinel_kwargs=sentinel_options(sentinel_password)
    )
    return sentinels.master_for(master, password=password or None, **_OPTIONS)


def sentinel_options(password: str) -> dict[str, Any]:
    """How the gateway's clients and the broker talk to a Sentinel: a short timeout and no
    retries. There are several Sentinels; one that does not answer is passed over at once (with
    redis-py's default retries, a Sentinel whose host hangs held each discovery for seconds)."""
    return {
        "password": password or None,
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": SOCKET_TIMEOUT,
        "retry": Retry(NoBackoff(), 0),
    }


def confirm_replicated(redis_client: redis.Redis, replicas: int, timeout: float) -> None:
    """Return once ``replicas`` replicas hold every write this process made so far; raise
    :class:`ReplicationTimeout` if fewer confirm within ``timeout`` seconds. A no-op for 0.

    The mark and ``WAIT`` go in one pipeline, so they share a connection, as ``WAIT`` needs."""
    if replicas <= 0:
        return
    pipe = redis_client.pipeline(transaction=False)
    pipe.set(keys.REPLICATION_MARK, "1", ex=keys.REPLICATION_MARK_TTL)
    pipe.execute_command("WAIT", replicas, max(1, int(timeout * 1000)))
    _, confirmed = pipe.execute()
    if int(confirmed) < replicas:
        raise ReplicationTimeout(f"{confirmed} of {replicas} replicas confirmed within {timeout}s")
