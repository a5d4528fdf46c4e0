from __future__ import annotations

import base64

import pytest
import requests

from app.ops.flower import FlowerConfigError, flower_command
from tests.stack import BIN, Process, RedisServer, free_port, gateway_env, settings_of, wait_for

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
