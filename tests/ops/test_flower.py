from __future__ import annotations

import base64
import time
from collections.abc import Iterator

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


class Watched:
    """A Redis of its own, a task publisher on it, the task events sent there as Flower receives
    them, and the processes a test starts on it."""

    def __init__(self):
        self.redis_server = RedisServer(appendonly=False).start()
        self.publisher = TaskPublisher(
            Celery(broker=self.redis_server.url, set_as_current=False), self.redis_server.client()
        )
        self.events = TaskEvents(self.redis_server.url)
        self.processes: list[Process] = []
        time.sleep(1)  # the receiver binds its queue before any worker sends anything

    def env(self, **extra: str) -> dict[str, str]:
        return gateway_env(self.redis_server.url, "http://127.0.0.1:9", **extra)

    def worker(self, env: dict[str, str], task_events: bool = False) -> Process:
        worker = start_worker(env, queues="inbound", concurrency=1, task_events=task_events)
        self.processes.append(worker)
        return worker

    def run_task(self) -> None:
        self.publisher.publish("inbound.recover_lost_tasks", [], queue="inbound", argsrepr="()")

    def reported(self) -> int:
        """Task-succeeded events received so far."""
        return sum(1 for e in self.events.events if e["type"] == "task-succeeded")

    def close(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.events.close()
        self.redis_server.close()


@pytest.fixture
def watched() -> Iterator[Watched]:
    stack = Watched()
    try:
        yield stack
    finally:
        stack.close()


def test_workers_send_task_events_once_flower_asks_for_them(watched):
    """Task events are off by default (they cost every task three publishes); Flower, as the
    Procfile runs it, turns them on and then shows the tasks the workers run."""
    worker = watched.worker(watched.env(FLOWER_BASIC_AUTH=CREDENTIALS))
    watched.run_task()
    wait_for(lambda: worker.output().count("succeeded") == 1)
    time.sleep(1)
    assert not [e for e in watched.events.events if e["type"].startswith("task-")]

    port = free_port()
    env = watched.env(FLOWER_BASIC_AUTH=CREDENTIALS)
    flower = Process("flower", [str(BIN / "wa-gateway"), "flower", "--port", str(port)], env)
    watched.processes.append(flower)
    url = f"http://127.0.0.1:{port}"
    auth = {"Authorization": "Basic " + base64.b64encode(CREDENTIALS.encode()).decode()}
    wait_for(lambda: requests.get(f"{url}/healthcheck", timeout=2).ok, timeout=60)

    def flower_shows_a_task() -> bool:
        watched.run_task()
        tasks = requests.get(f"{url}/api/tasks", headers=auth, timeout=5).json()
        return any(
            t["name"] == "inbound.recover_lost_tasks" and t["state"] == "SUCCESS"
            for t in tasks.values()
        )

    wait_for(flower_shows_a_task, timeout=30, interval=1)
    # Flower and this receiver each read the event stream at their own pace.
    wait_for(lambda: watched.reported() >= 1, timeout=20)


def test_a_worker_stops_sending_task_events_once_nobody_asks_for_them(watched):
    """Events asked for are lent for CELERY_TASK_EVENTS_LEASE seconds: renewed while a monitor
    keeps asking (Flower does every few seconds), off again once it stops, so a Flower stopped
    or killed leaves no worker paying for them."""
    worker = watched.worker(watched.env(CELERY_TASK_EVENTS_LEASE="4"))

    def ask() -> None:  # what Flower sends every few seconds
        assert watched.events.app.control.enable_events(reply=True, timeout=2)

    def run_task(count: int) -> None:
        watched.run_task()
        wait_for(lambda: worker.output().count("succeeded in") == count)

    ask()
    run_task(1)
    wait_for(lambda: watched.reported() == 1)
    for _ in range(4):  # 6 s in all, past one lease: each request renews it
        time.sleep(1.5)
        ask()
    run_task(2)
    wait_for(lambda: watched.reported() == 2)
    assert "task events off" not in worker.output()
    wait_for(lambda: "task events off" in worker.output(), timeout=20)
    run_task(3)
    time.sleep(2)
    assert watched.reported() == 2


def test_a_worker_started_with_task_events_keeps_them(watched):
    """``-E`` asks for them for good: a monitor that comes and goes does not end them."""
    worker = watched.worker(watched.env(CELERY_TASK_EVENTS_LEASE="2"), task_events=True)
    assert watched.events.app.control.enable_events(reply=True, timeout=2)
    time.sleep(4)  # two leases
    watched.run_task()
    wait_for(lambda: watched.reported() >= 1)
    assert "task events off" not in worker.output()
