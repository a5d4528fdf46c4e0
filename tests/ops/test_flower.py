from __future__ import annotations

import base64
import time

import pytest
import requests
from celery import Celery

from app.ops.flower import FlowerConfigError, flower_command
from tasks.publish import TaskPublisher
from tests.stack import (
    BIN,
    Process,
    RedisServer,
    TaskEvents,
    free_port,
    gateway_env,
    settings_of,
    start_worker,
    wait_for,
)

CREDENTIALS = "ops:correct-horse-battery"


def command(address: str, environ: dict[str, str]):
    """Flower's argv and environment for a process whose environment is ``environ``."""
    return flower_command(address, 5555, settings_of(environ), environ)


def test_refuses_to_start_without_basic_auth_outside_the_sandbox():
    with pytest.raises(FlowerConfigError, match="FLOWER_BASIC_AUTH"):
        command("0.0.0.0", {})


@pytest.mark.parametrize("value", ["admin", "admin:", ":password-long-enough", "admin:short"])
def test_refuses_malformed_or_weak_credentials(value):
    with pytest.raises(FlowerConfigError):
        command("127.0.0.1", {"FLOWER_BASIC_AUTH": value})


def test_the_sandbox_may_run_it_without_credentials_on_loopback_only():
    argv, _ = command("127.0.0.1", {"GATEWAY_SANDBOX": "1"})
    assert argv[-2:] == ["--address=127.0.0.1", "--port=5555"]
    with pytest.raises(FlowerConfigError, match="loopback"):
        command("0.0.0.0", {"GATEWAY_SANDBOX": "1"})


def test_credentials_stay_out_of_the_command_line_and_metrics_out_of_the_shared_directory():
    argv, env = command(
        "0.0.0.0", {"FLOWER_BASIC_AUTH": CREDENTIALS, "PROMETHEUS_MULTIPROC_DIR": "/tmp/m"}
    )
    assert not [arg for arg in argv if "correct-horse" in arg]
    assert env["FLOWER_BASIC_AUTH"] == CREDENTIALS
    assert "PROMETHEUS_MULTIPROC_DIR" not in env


def test_the_command_exits_with_a_message_and_starts_with_credentials():
    redis_server = RedisServer(appendonly=False).start()
    port = free_port()
    try:
        env = gateway_env(redis_server.url, "http://127.0.0.1:9")
        env.pop("FLOWER_BASIC_AUTH", None)
        env.pop("GATEWAY_SANDBOX", None)
        refused = Process("flower", [str(BIN / "wa-gateway"), "flower", "--port", str(port)], env)
        assert refused.proc.wait(timeout=30) == 2
        refused.stop()
        assert "FLOWER_BASIC_AUTH" in refused.output()

        env["FLOWER_BASIC_AUTH"] = CREDENTIALS
        flower = Process("flower", [str(BIN / "wa-gateway"), "flower", "--port", str(port)], env)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(lambda: requests.get(f"{url}/healthcheck", timeout=2).ok, timeout=60)
            assert requests.get(f"{url}/broker", timeout=5).status_code == 401
            token = base64.b64encode(CREDENTIALS.encode()).decode()
            queues = requests.get(
                f"{url}/api/queues/length", headers={"Authorization": f"Basic {token}"}, timeout=10
            )
            assert queues.status_code == 200
            names = {q["name"] for q in queues.json()["active_queues"]}
            assert {"inbound", "send.high", "send.bulk", "alerts"} <= names
            # Flower's own metrics are open: the README says to keep its port private.
            assert requests.get(f"{url}/metrics", timeout=5).status_code == 200
            assert "correct-horse" not in flower.output()
        finally:
            flower.stop()
    finally:
        redis_server.close()


def test_workers_send_task_events_once_flower_asks_for_them():
    """Task events are off by default (they cost every task three publishes); Flower, as the
    Procfile runs it, turns them on and then shows the tasks the workers run."""
    redis_server = RedisServer(appendonly=False).start()
    env = gateway_env(redis_server.url, "http://127.0.0.1:9", FLOWER_BASIC_AUTH=CREDENTIALS)
    publisher = TaskPublisher(
        Celery(broker=redis_server.url, set_as_current=False), redis_server.client()
    )
    events = TaskEvents(redis_server.url)
    processes = []
    try:
        time.sleep(1)  # the receiver binds its queue before the worker sends anything
        worker = start_worker(env, queues="inbound", concurrency=1)
        processes.append(worker)

        def run_task() -> None:
            publisher.publish("inbound.recover_lost_tasks", [], queue="inbound", argsrepr="()")

        run_task()
        wait_for(lambda: worker.output().count("succeeded") == 1)
        time.sleep(1)
        assert not [e for e in events.events if e["type"].startswith("task-")]

        port = free_port()
        flower = Process("flower", [str(BIN / "wa-gateway"), "flower", "--port", str(port)], env)
        processes.append(flower)
        url = f"http://127.0.0.1:{port}"
        auth = {"Authorization": "Basic " + base64.b64encode(CREDENTIALS.encode()).decode()}
        wait_for(lambda: requests.get(f"{url}/healthcheck", timeout=2).ok, timeout=60)

        def flower_shows_a_task() -> bool:
            run_task()
            tasks = requests.get(f"{url}/api/tasks", headers=auth, timeout=5).json()
            return any(
                t["name"] == "inbound.recover_lost_tasks" and t["state"] == "SUCCESS"
                for t in tasks.values()
            )

        wait_for(flower_shows_a_task, timeout=30, interval=1)
        # Flower and this receiver each read the event stream at their own pace.
        wait_for(lambda: any(e["type"] == "task-succeeded" for e in events.events), timeout=20)
    finally:
        for proc in reversed(processes):
            proc.stop()
        events.close()
        redis_server.close()


def test_a_worker_stops_sending_task_events_once_nobody_asks_for_them():
    """Events asked for are lent for CELERY_TASK_EVENTS_LEASE seconds: renewed while a monitor
    keeps asking (Flower does every few seconds), off again once it stops, so a Flower stopped
    or killed leaves no worker paying for them."""
    redis_server = RedisServer(appendonly=False).start()
    env = gateway_env(redis_server.url, "http://127.0.0.1:9", CELERY_TASK_EVENTS_LEASE="4")
    publisher = TaskPublisher(
        Celery(broker=redis_server.url, set_as_current=False), redis_server.client()
    )
    events = TaskEvents(redis_server.url)
    worker = None
    try:
        time.sleep(1)  # the receiver binds its queue before the worker sends anything
        worker = start_worker(env, queues="inbound", concurrency=1)

        def ask() -> None:  # what Flower sends every few seconds
            assert events.app.control.enable_events(reply=True, timeout=2)

        def run_task(count: int) -> None:
            publisher.publish("inbound.recover_lost_tasks", [], queue="inbound", argsrepr="()")
            wait_for(lambda: worker.output().count("succeeded in") == count)

        def reported() -> int:
            return sum(1 for e in events.events if e["type"] == "task-succeeded")

        ask()
        run_task(1)
        wait_for(lambda: reported() == 1)
        for _ in range(4):  # 6 s in all, past one lease: each request renews it
            time.sleep(1.5)
            ask()
        run_task(2)
        wait_for(lambda: reported() == 2)
        assert "task events off" not in worker.output()
        wait_for(lambda: "task events off" in worker.output(), timeout=20)
        run_task(3)
        time.sleep(2)
        assert reported() == 2
    finally:
        if worker is not None:
            worker.stop()
        events.close()
        redis_server.close()


def test_a_worker_started_with_task_events_keeps_them():
    """``-E`` asks for them for good: a monitor that comes and goes does not end them."""
    redis_server = RedisServer(appendonly=False).start()
    env = gateway_env(redis_server.url, "http://127.0.0.1:9", CELERY_TASK_EVENTS_LEASE="2")
    publisher = TaskPublisher(
        Celery(broker=redis_server.url, set_as_current=False), redis_server.client()
    )
    events = TaskEvents(redis_server.url)
    worker = None
    try:
        time.sleep(1)  # the receiver binds its queue before the worker sends anything
        worker = start_worker(env, queues="inbound", concurrency=1, task_events=True)
        assert events.app.control.enable_events(reply=True, timeout=2)
        time.sleep(4)  # two leases
        publisher.publish("inbound.recover_lost_tasks", [], queue="inbound", argsrepr="()")
        wait_for(lambda: any(e["type"] == "task-succeeded" for e in events.events))
        assert "task events off" not in worker.output()
    finally:
        if worker is not None:
            worker.stop()
        events.close()
        redis_server.close()
