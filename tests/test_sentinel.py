"""The gateway behind Redis Sentinel: a master, a replica and three Sentinels of the test's own.

Every process finds the master through the Sentinels (``sentinel://`` in ``REDIS_URL``), follows
it when the master dies and a replica takes over, and with ``REDIS_MIN_REPLICAS`` acknowledges
only what a replica holds.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from app import keys
from app.config import ConfigError
from app.db import confirm_replicated, get_redis
from app.errors import ReplicationTimeout
from drills.harness import API_KEY, template_to
from tests.stack import (
    TEST_CREDENTIALS,
    SentinelGroup,
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
