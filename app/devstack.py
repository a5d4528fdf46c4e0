"""``wa-gateway run``: every Procfile process, plus a sandbox when the environment lacks one.

With no ``REDIS_URL`` it starts a local ``redis-server`` (append-only file on, under
``.wa-gateway/redis``) with a generated password. With no ``WHATSAPP_ACCESS_TOKEN`` it starts the
Cloud API simulator with sandbox credentials and points the gateway at it, then plays a demo
conversation. Generated secrets are kept in ``.wa-gateway/sandbox.json``. Every listener binds
``HOST`` (127.0.0.1 unless set). Ctrl-C stops everything it started.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import requests

from app.config import get_settings

STATE_DIR = Path(".wa-gateway")
"""Local state of the embedded sandbox: Redis's data and the sandbox credentials."""

SANDBOX_REDIS_PORT = 6390
"""The embedded Redis's port, away from a system Redis on 6379."""

DEMO_CUSTOMER = "573001234567"
DEMO_NAME = "Ana"


def read_procfile(path: str = "Procfile") -> list[tuple[str, str]]:
    """The (name, command) pairs of a Procfile, in order."""
    entries = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and ":" in line:
            name, command = line.split(":", 1)
            entries.append((name.strip(), command.strip()))
    return entries


def free_port(preferred: int) -> int:
    """``preferred`` if it is free on 127.0.0.1, else any free port."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free port")


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by its owner only from the first byte on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    path.chmod(0o600)  # the file may predate this, with wider permissions


def _kept(generated: dict[str, str]) -> dict[str, str]:
    """``generated``'s keys, with the values ``sandbox.json`` keeps for them; new ones are kept
    there, so that restarts keep their data."""
    path = STATE_DIR / "sandbox.json"
    kept = json.loads(path.read_text()) if path.exists() else {}
    merged = {**generated, **kept}  # an older sandbox keeps its values and gains what it lacks
    if merged != kept:
        _write_private(path, json.dumps(merged, indent=2))
    return {name: merged[name] for name in generated}


def sandbox_credentials() -> dict[str, str]:
    """Credentials for the sandbox, created once and kept so that restarts keep their data."""
    return _kept(
        {
            "WHATSAPP_ACCESS_TOKEN": "sandbox-" + secrets.token_urlsafe(32),
            "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
            "WHATSAPP_BUSINESS_ACCOUNT_ID": "102290129340398",
            "WHATSAPP_WEBHOOK_VERIFY_TOKEN": secrets.token_urlsafe(16),
            "WHATSAPP_WEBHOOK_SECRET": secrets.token_hex(32),
            "GATEWAY_API_KEYS": "sandbox-" + secrets.token_urlsafe(24),
        }
    )


def embedded_redis(binary: str, host: str, port: int) -> tuple[str, str]:
    """The command that runs the embedded Redis, and the URL (with its password) to reach it.

    The password is generated once and kept in ``sandbox.json``; it reaches ``redis-server``
    through a configuration file only its owner reads, never a command line ``ps`` shows.
    """
    password = _kept({"REDIS_PASSWORD": secrets.token_urlsafe(32)})["REDIS_PASSWORD"]
    data_dir = (STATE_DIR / "redis").resolve()
    config = data_dir / "redis.conf"
    _write_private(
        config,
        "\n".join(
            [
                f"port {port}",
                f"bind {host}",
                f'dir "{data_dir}"',
                "appendonly yes",
                "appendfsync everysec",
                'save ""',
                f"requirepass {password}",
                "",
            ]
        ),
    )
    return shlex.join([binary, str(config)]), f"redis://:{password}@{connect_host(host)}:{port}/0"


def connect_host(host: str) -> str:
    """The address a local client uses to reach a listener bound to ``host``."""
    return "127.0.0.1" if host in ("0.0.0.0", "::") else host


def run_stack(demo: bool = True) -> int:
    """Start the processes and block until Ctrl-C (or one of them stops)."""
    from honcho.manager import Manager  # only the run command needs it; the demo does not

    settings = get_settings()

    env = dict(os.environ)
    # The Procfile names console scripts; make this interpreter's scripts directory win.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    web_port = int(env.setdefault("PORT", "8000"))
    flower_port = settings.flower_port
    env["FLOWER_PORT"] = str(flower_port)
    # Every listener on HOST (127.0.0.1 by default): the Procfile's web would take 0.0.0.0.
    host = env["HOST"] = settings.host
    env.setdefault("FLOWER_ADDRESS", host)
    local = f"http://{connect_host(host)}"
    manager = Manager()

    if not settings.redis_url:
        redis_server = shutil.which("redis-server")
        if not redis_server:
            print(
                "No REDIS_URL and no redis-server on the PATH: install Redis "
                "(apt-get install redis-server) or set REDIS_URL.",
                file=sys.stderr,
            )
            return 2
        command, env["REDIS_URL"] = embedded_redis(
            redis_server, host, free_port(SANDBOX_REDIS_PORT)
        )
        manager.add_process("redis", command, env=env)

    sandbox = not settings.access_token
    simulator_url = None
    if sandbox:
        env.update(sandbox_credentials())
        sim_port = free_port(settings.simulator_port)
        simulator_url = f"{local}:{sim_port}"
        env["WHATSAPP_API_BASE_URL"] = simulator_url
        env.setdefault("GATEWAY_SANDBOX", "1")
        manager.add_process(
            "simulator",
            shlex.join(
                [
                    sys.executable,
                    "-m",
                    "app.cli",
                    "simulator",
                    "--host",
                    host,
                    "--port",
                    str(sim_port),
                    "--webhook-url",
                    f"{local}:{web_port}/webhooks/whatsapp",
                ]
            ),
            env=env,
        )

    # One multiprocess-metrics directory for every process of this host, emptied before any starts.
    from app.ops.metrics import clean_multiproc_dir

    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str((STATE_DIR / "metrics").resolve()))
    clean_multiproc_dir(env["PROMETHEUS_MULTIPROC_DIR"])

    for name, command in read_procfile():
        manager.add_process(name, command, env=env)

    metrics_port = settings.metrics_port or web_port
    print(f"webhook:   {local}:{web_port}/webhooks/whatsapp", flush=True)
    print(f"flower:    http://{connect_host(env['FLOWER_ADDRESS'])}:{flower_port}", flush=True)
    print(f"metrics:   {local}:{metrics_port}/metrics", flush=True)
    if simulator_url:
        print(
            f"simulator: {simulator_url}  (try: wa-gateway simulator say --url {simulator_url} Hola)",
            flush=True,
        )
        print(
            f"send API:  {local}:{web_port}/v1/messages with the sandbox key in "
            f"{STATE_DIR / 'sandbox.json'} (GATEWAY_API_KEYS)",
            flush=True,
        )
        if demo:
            threading.Thread(
                target=play_demo, args=(f"{local}:{web_port}", simulator_url), daemon=True
            ).start()
    manager.loop()
    return manager.returncode or 0


DEMO_CONVERSATION = (
    "Hola",
    "¿Cuánto cuesta la camiseta roja?",
    "¿Y cuánto tarda el envío de esa?",
)
"""What the simulated customer says; the last question only makes sense with the one before."""


def play_demo(web_url: str, simulator_url: str, timeout: float = 60.0) -> bool:
    """A simulated customer has a short conversation; print it as the simulator sees it. The
    follow-up question is answered about the product asked for before: the context at work."""
    deadline = time.monotonic() + timeout
    while not (_up(f"{web_url}/healthz") and _up(f"{simulator_url}/_sim/health")):
        if time.monotonic() > deadline:
            print("[demo] the gateway did not come up in time", flush=True)
            return False
        time.sleep(0.5)
    for text in DEMO_CONVERSATION:
        said = requests.post(
            f"{simulator_url}/_sim/customers/{DEMO_CUSTOMER}/messages",
            json={"text": text, "name": DEMO_NAME},
            timeout=15,
        ).json()
        print(
            f"[demo] {DEMO_NAME} ({DEMO_CUSTOMER}) says: {text}   -> webhook answered "
            f"{said.get('gateway_status')}",
            flush=True,
        )
        reply = _wait_for_reply(simulator_url, said.get("wamid"), deadline)
        if reply is None:
            print("[demo] no reply yet: see the worker logs and Flower", flush=True)
            return False
        print(f"[demo] gateway replies to {reply['to']}: {reply['text']['body']}", flush=True)
    return True


def _wait_for_reply(simulator_url: str, wamid: str | None, deadline: float) -> dict | None:
    while time.monotonic() < deadline:
        sent = requests.get(f"{simulator_url}/_sim/messages", timeout=5).json()["messages"]
        for item in sent:
            if item["body"].get("context", {}).get("message_id") == wamid:
                return item["body"]
        time.sleep(0.5)
    return None


def _up(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False
