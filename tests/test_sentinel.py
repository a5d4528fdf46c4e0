"""The gateway behind Redis Sentinel: a master, a replica and three Sentinels of the test's own.

Every process finds the master through the Sentinels (``sentinel://`` in ``REDIS_URL``), follows
it when the master dies and a replica takes over, and with ``REDIS_MIN_REPLICAS`` acknowledges
only what a replica holds.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests
from celery import Celery
from redis.sentinel import MasterNotFoundError, Sentinel

from app import keys
from app.config import ConfigError
from app.db import (
    NewestSentinel,
    confirm_replicated,
    get_redis,
    sentinel_addresses,
    sentinel_options,
)
from app.errors import ReplicationTimeout
from drills.harness import API_KEY, template_to
from tasks.publish import TaskPublisher
from tests.stack import (
    TEST_CREDENTIALS,
    RedisServer,
    SentinelGroup,
    free_port,
    gateway_env,
    settings_of,
    signed_post,
    start_web,
    start_worker,
    text_webhook,
    wait_for,
)


@pytest.fixture
def group() -> Iterator[SentinelGroup]:
    group = SentinelGroup(replicas=1).start()
    try:
        yield group
    finally:
        group.close()


@pytest.fixture
def sentinel_settings(group, monkeypatch):
    for name, value in group.env().items():
        monkeypatch.setenv(name, value)


def test_a_sentinel_url_needs_its_master_name_and_carries_no_password():
    with pytest.raises(ConfigError, match="REDIS_SENTINEL_MASTER is missing"):
        settings_of({"REDIS_URL": "sentinel://127.0.0.1:26379"})
    with pytest.raises(ConfigError, match="REDIS_URL") as refused:
        settings_of(
            {"REDIS_URL": "sentinel://:hunter2@127.0.0.1:26379", "REDIS_SENTINEL_MASTER": "m"}
        )
    assert "hunter2" not in str(refused.value)
    with pytest.raises(ConfigError, match="REDIS_URL"):
        settings_of(
            {"REDIS_URL": "sentinel://127.0.0.1:26379;redis://x", "REDIS_SENTINEL_MASTER": "m"}
        )
    settings = settings_of(
        {"REDIS_URL": "sentinel://a:26379;sentinel://b", "REDIS_SENTINEL_MASTER": "m"}
    )
    assert settings.redis_url == "sentinel://a:26379;sentinel://b"


def test_the_client_follows_the_master_through_a_failover(group, sentinel_settings):
    client = get_redis(group.url)
    client.set("before", "1")
    old_port = group.master_port()
    confirm_replicated(client, 1, 1.5)  # the replica holds "before"
    group.crash_master()
    # The same client, without a restart: writes fail while no master exists, then go through.
    wait_for(lambda: client.set("after", "1"), timeout=30, interval=0.2)
    assert group.master_port() != old_port
    assert client.get("before") == "1"  # acknowledged as replicated, so kept


def test_wait_refuses_when_fewer_replicas_confirm(group, sentinel_settings):
    client = get_redis(group.url)
    confirm_replicated(client, 1, 1.0)
    with pytest.raises(ReplicationTimeout, match="1 of 2 replicas"):
        confirm_replicated(client, 2, 0.2)
    assert client.exists(keys.REPLICATION_MARK)  # the write itself went to the master


def test_web_and_workers_follow_a_failover_without_a_restart(group):
    env = gateway_env("", "http://127.0.0.1:9", REDIS_MIN_REPLICAS="1", **group.env())
    web, web_url = start_web(env)
    worker = start_worker(env, queues="inbound", concurrency=1)
    try:
        first = signed_post(f"{web_url}/webhooks/whatsapp", text_webhook("573001234567", "uno"))
        assert first.status_code == 200 and first.json()["status"] == "accepted"
        wait_for(lambda: worker.output().count("process_webhook") >= 2)  # received, succeeded
        crashed = group.crash_master()
        wait_for(lambda: group.master_port() != crashed.port, timeout=30)
        crashed.start()  # back as a replica of the new master, so WAIT can be satisfied again

        def accepted() -> bool:
            body = text_webhook("573001234567", "dos", wamid="wamid.after-failover")
            return signed_post(f"{web_url}/webhooks/whatsapp", body).status_code == 200

        wait_for(accepted, timeout=60, interval=0.5)
        # The worker, connected to the dead master, finds the new one and runs the task.
        wait_for(lambda: worker.output().count("succeeded") >= 2, timeout=60)
        for proc in (web, worker):
            assert SentinelGroup.REDIS_PASSWORD not in proc.output()
            assert SentinelGroup.SENTINEL_PASSWORD not in proc.output()
            assert TEST_CREDENTIALS["WHATSAPP_ACCESS_TOKEN"] not in proc.output()
    finally:
        worker.stop()
        web.stop()


def test_a_webhook_or_send_no_replica_confirms_is_answered_503_and_kept(group):
    env = gateway_env(
        "",
        "http://127.0.0.1:9",
        REDIS_MIN_REPLICAS="2",
        REDIS_WAIT_TIMEOUT="0.2",
        GATEWAY_API_KEYS=API_KEY,
    )
    env.update(group.env())
    web, web_url = start_web(env)
    try:
        response = signed_post(f"{web_url}/webhooks/whatsapp", text_webhook("573001234567", "hola"))
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "replication_timeout"
        assert response.headers["Retry-After"]
        master = group.server(group.master_port()).client()
        assert master.llen("inbound") == 1  # queued all the same: nothing accepted is lost
        sent = requests.post(
            f"{web_url}/v1/messages",
            json=template_to("573001234567"),
            headers={"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": "k-1"},
            timeout=10,
        )
        assert sent.status_code == 503
        assert sent.json()["error"]["code"] == "replication_timeout"
        assert master.llen("send.normal") == 1  # the send is queued, and sent once: not lost
    finally:
        web.stop()


class SplitView:
    """Two masters and a lone Sentinel watching each under one name: ``newest`` holds the
    configuration of a failover (``config-epoch`` 1), ``stale`` never heard of it and still names
    the old master, restarted empty, as for the seconds after a failover when a Sentinel lags."""

    NAME = "wa-split"

    def __init__(self):
        self.master = RedisServer().start()
        self.old_master = RedisServer().start()
        self.dir = Path(tempfile.mkdtemp(prefix="wa-split-"))
        self.stale_port, self.newest_port = free_port(), free_port()
        self.sentinels = [
            self._sentinel(self.stale_port, self.old_master.port, epoch=0),
            self._sentinel(self.newest_port, self.master.port, epoch=1),
        ]
        for port in (self.stale_port, self.newest_port):
            client = redis.Redis(port=port, decode_responses=True)
            wait_for(lambda c=client: c.sentinel_masters().get(self.NAME), timeout=10)

    def _sentinel(self, port: int, master_port: int, epoch: int) -> subprocess.Popen:
        config = self.dir / f"sentinel-{port}.conf"
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {self.NAME} 127.0.0.1 {master_port} 1\n"
            f"sentinel config-epoch {self.NAME} {epoch}\n"
        )
        return subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", str(config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @property
    def url(self) -> str:  # the stale Sentinel first, as a client may well find it
        return f"sentinel://127.0.0.1:{self.stale_port};sentinel://127.0.0.1:{self.newest_port}"

    def close(self) -> None:
        for proc in self.sentinels:
            proc.terminate()
            proc.wait(timeout=10)
        self.master.close()
        self.old_master.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def split() -> Iterator[SplitView]:
    view = SplitView()
    try:
        yield view
    finally:
        view.close()


def test_the_client_follows_the_sentinel_that_heard_of_the_failover(split, monkeypatch):
    addresses = sentinel_addresses(split.url)
    # redis-py's own client takes the first Sentinel's word: the old master, about to be wiped.
    assert Sentinel(addresses).discover_master(split.NAME)[1] == split.old_master.port
    for order in (addresses, addresses[::-1]):
        assert NewestSentinel(order).discover_master(split.NAME)[1] == split.master.port
    monkeypatch.setenv("REDIS_URL", split.url)
    monkeypatch.setenv("REDIS_SENTINEL_MASTER", split.NAME)
    get_redis(split.url).set("written", "1")
    assert split.master.client().get("written") == "1"
    assert split.old_master.client().dbsize() == 0


class SilentSentinel:
    """A port that takes connections and never answers: a Sentinel whose host hangs."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.address = self.server.getsockname()
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.connections.append(self.server.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.server.close()
        for connection in self.connections:
            connection.close()


def test_a_sentinel_that_does_not_answer_is_asked_again_only_after_a_while(split):
    """Every Sentinel is asked, so one whose host is down would cost every new connection its
    timeout; it is left out for a while instead, and asked all the same when it is the only one."""
    silent = SilentSentinel()
    timeouts = {**sentinel_options(""), "socket_timeout": 0.3, "socket_connect_timeout": 0.3}
    try:
        client = NewestSentinel(
            [silent.address, *sentinel_addresses(split.url)], sentinel_kwargs=timeouts
        )
        assert client.discover_master(split.NAME)[1] == split.master.port
        wait_for(lambda: len(silent.connections) == 1, timeout=5)  # asked once, not retried
        assert client.discover_master(split.NAME)[1] == split.master.port
        time.sleep(0.5)
        assert len(silent.connections) == 1  # not asked this time
        alone = NewestSentinel([silent.address], sentinel_kwargs=timeouts)
        with pytest.raises(MasterNotFoundError):
            alone.discover_master(split.NAME)
        wait_for(lambda: len(silent.connections) == 2, timeout=5)  # the only one: asked
    finally:
        silent.close()


def test_a_worker_and_its_pool_find_the_master_the_failover_chose(split):
    """The worker's consumer (kombu) and its pool processes (the gateway's client) both follow
    the newest Sentinel: the task queued on the master runs, and nothing reaches the old one."""
    env = gateway_env("", "http://127.0.0.1:9", REDIS_URL=split.url)
    env["REDIS_SENTINEL_MASTER"] = split.NAME
    worker = start_worker(env, queues="inbound", concurrency=1)
    try:
        publisher = TaskPublisher(
            Celery(broker=split.master.url, set_as_current=False), split.master.client()
        )
        publisher.publish("inbound.recover_lost_tasks", [], queue="inbound", argsrepr="()")
        wait_for(lambda: "succeeded" in worker.output(), timeout=30)
        # The run's journal entry, written by the pool process, is settled on the master.
        assert not split.master.client().hlen(keys.TASK_JOURNAL)
        assert split.old_master.client().dbsize() == 0
    finally:
        worker.stop()
