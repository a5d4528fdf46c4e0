"""``wa-gateway run``: what it binds and how its embedded Redis is locked, without running it."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import redis

from app import devstack
from tests.stack import ROOT, free_port, wait_for


@pytest.fixture
def state(tmp_path, monkeypatch) -> Path:
    """A project directory of the test's own, with the Procfile, where .wa-gateway is made."""
    shutil.copy(ROOT / "Procfile", tmp_path / "Procfile")
    monkeypatch.chdir(tmp_path)
    return tmp_path / ".wa-gateway"


class Recorder:
    """Stands in for honcho's Manager: records the processes instead of starting them."""

    started: dict[str, tuple[str, dict[str, str]]] = {}
    returncode = 0

    def add_process(self, name: str, command: str, env: dict[str, str]) -> None:
        Recorder.started[name] = (command, env)

    def loop(self) -> None:
        pass


def planned(monkeypatch, **environ: str) -> dict[str, tuple[str, dict[str, str]]]:
    """The processes ``wa-gateway run`` would start, with their commands as the shell expands them."""
    monkeypatch.setattr("honcho.manager.Manager", Recorder)
    for name in ("REDIS_URL", "WHATSAPP_ACCESS_TOKEN", "HOST", "FLOWER_ADDRESS", "PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    Recorder.started = {}
    assert devstack.run_stack(demo=False) == 0
    expanded = {}
    for name, (command, env) in Recorder.started.items():
        shell = subprocess.run(
            ["sh", "-c", f"echo {command}"], env=env, capture_output=True, text=True, check=True
        )
        expanded[name] = (shell.stdout.strip(), env)
    return expanded


def bound_addresses(processes: dict[str, tuple[str, dict[str, str]]]) -> dict[str, str]:
    """Where each listener binds: the web's --bind, Flower's --address, the simulator's --host,
    and the ``bind`` line of Redis's configuration file."""
    web = shlex.split(processes["web"][0])
    flower = processes["flower"][0]
    simulator = shlex.split(processes["simulator"][0])
    redis_conf = Path(shlex.split(processes["redis"][0])[1]).read_text()
    (redis_bind,) = [line.split()[1] for line in redis_conf.splitlines() if line.startswith("bind")]
    return {
        "web": web[web.index("--bind") + 1].rsplit(":", 1)[0],
        "flower": flower.split("--address=")[1].split()[0],
        "simulator": simulator[simulator.index("--host") + 1],
        "redis": redis_bind,
    }


def test_every_listener_binds_loopback_by_default(state, monkeypatch):
    processes = planned(monkeypatch)
    assert bound_addresses(processes) == dict.fromkeys(
        ["web", "flower", "simulator", "redis"], "127.0.0.1"
    )


def test_host_moves_every_listener(state, monkeypatch):
    processes = planned(monkeypatch, HOST="0.0.0.0")
    assert set(bound_addresses(processes).values()) == {"0.0.0.0"}
    assert "@127.0.0.1:" in processes["web"][1]["REDIS_URL"]  # clients still dial loopback


def test_the_procfile_alone_binds_every_address_for_a_platform_router():
    (web,) = [
        command for name, command in devstack.read_procfile(ROOT / "Procfile") if name == "web"
    ]
    assert "--bind ${HOST:-0.0.0.0}:${PORT:-8000}" in web


def test_the_embedded_redis_has_a_kept_password_off_the_command_line(state, monkeypatch):
    processes = planned(monkeypatch)
    command, env = processes["redis"]
    password = json.loads((state / "sandbox.json").read_text())["REDIS_PASSWORD"]
    assert len(password) >= 32 and password not in command
    assert env["REDIS_URL"].startswith(f"redis://:{password}@127.0.0.1:")
    config = Path(shlex.split(command)[1])
    assert f"requirepass {password}" in config.read_text()
    for path in (config, state / "sandbox.json"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = planned(monkeypatch)
    assert again["redis"][1]["REDIS_URL"] == env["REDIS_URL"]  # restarts keep their data


def test_the_embedded_redis_refuses_a_client_without_the_password(state):
    port = free_port()
    command, url = devstack.embedded_redis(shutil.which("redis-server"), "127.0.0.1", port)
    server = subprocess.Popen(shlex.split(command), stdout=subprocess.DEVNULL)
    try:
        with_password = redis.Redis.from_url(url, socket_connect_timeout=0.5)
        assert wait_for(with_password.ping, timeout=10)
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()
        with_password.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
