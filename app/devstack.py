"""``wa-gateway run``: every Procfile process, plus a sandbox when the environment lacks one.

With no ``REDIS_URL`` it starts a local ``redis-server`` (append-only file on, under
``.wa-gateway/redis``). With no ``WHATSAPP_ACCESS_TOKEN`` it starts the Cloud API simulator with
sandbox credentials (kept in ``.wa-gateway/sandbox.json``) and points the gateway at it, then plays
a demo conversation. Ctrl-C stops everything it started.
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


def sandbox_credentials() -> dict[str, str]:
    """Credentials for the sandbox, created once and kept so that restarts keep their data."""
    path = STATE_DIR / "sandbox.json"
    kept = json.loads(path.read_text()) if path.exists() else {}
    creds = {
        "WHATSAPP_ACCESS_TOKEN": "sandbox-" + secrets.token_urlsafe(32),
        "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
        "WHATSAPP_BUSINESS_ACCOUNT_ID": "102290129340398",
        "WHATSAPP_WEBHOOK_VERIFY_TOKEN": secrets.token_urlsafe(16),
        "WHATSAPP_WEBHOOK_SECRET": secrets.token_hex(32),
        "GATEWAY_API_KEYS": "sandbox-" + secrets.token_urlsafe(24),
        **kept,  # an older sandbox keeps its credentials and gains only what it lacks
    }
    if creds != kept:
        STATE_DIR.mkdir(exist_ok=True)
        path.write_text(json.dumps(creds, indent=2))
        path.chmod(0o600)
    return creds


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
        data_dir = STATE_DIR / "redis"
        data_dir.mkdir(parents=True, exist_ok=True)
        port = free_port(SANDBOX_REDIS_PORT)
        env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        manager.add_process(
            "redis",
            shlex.join(
                [
                    redis_server,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(data_dir.resolve()),
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "everysec",
                    "--save",
                    "",
                ]
            ),
            env=env,
        )

    sandbox = not settings.access_token
    simulator_url = None
    if sandbox:
        env.update(sandbox_credentials())
        sim_port = free_port(settings.simulator_port)
        simulator_url = f"http://127.0.0.1:{sim_port}"
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
                    "--port",
                    str(sim_port),
                    "--webhook-url",
                    f"http://127.0.0.1:{web_port}/webhooks/whatsapp",
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

    print(f"webhook:   http://127.0.0.1:{web_port}/webhooks/whatsapp", flush=True)
    print(f"flower:    http://127.0.0.1:{flower_port}", flush=True)
    print(f"metrics:   http://127.0.0.1:{web_port}/metrics", flush=True)
    if simulator_url:
        print(
            f"simulator: {simulator_url}  (try: wa-gateway simulator say --url {simulator_url} Hola)",
            flush=True,
        )
        print(
            f"send API:  http://127.0.0.1:{web_port}/v1/messages with the sandbox key in "
            f"{STATE_DIR / 'sandbox.json'} (GATEWAY_API_KEYS)",
            flush=True,
        )
        if demo:
            threading.Thread(
                target=play_demo, args=(f"http://127.0.0.1:{web_port}", simulator_url), daemon=True
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
