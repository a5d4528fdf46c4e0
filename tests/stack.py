"""Real processes for tests: a Redis of their own, Celery workers, the web app, the simulator.

Every process listens on a free port of 127.0.0.1 and is stopped by the test that started it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import requests
from celery import Celery

from app.config import Settings, load_settings
from app.whatsapp.signature import SIGNATURE_HEADER, sign

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

TEST_CREDENTIALS = {
    "WHATSAPP_ACCESS_TOKEN": "EAAtest-access-token-0123456789abcdef",
    "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
    "WHATSAPP_BUSINESS_ACCOUNT_ID": "102290129340398",
    "WHATSAPP_WEBHOOK_VERIFY_TOKEN": "verify-token-for-tests",
    "WHATSAPP_WEBHOOK_SECRET": "app-secret-for-tests-0123456789abcdef",
}
"""Credentials every test process runs with; tests search captured output for these values."""


def settings_of(environ: dict[str, str]) -> Settings:
    """Settings read from ``environ`` alone (no ``.env``), without requiring the credentials."""
    return load_settings(environ, env_file=None, require_gateway=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy; raise TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except Exception:  # noqa: BLE001 - the thing polled may not be up yet
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)


class RedisServer:
    """A ``redis-server`` of the test's own, on a free port, that can be stopped and restarted."""

    def __init__(
        self,
        appendonly: bool = True,
        fsync: str = "always",
        port: int | None = None,
        host: str = "127.0.0.1",
        netns: str | None = None,
        extra: list[str] | None = None,
        password: str = "",
    ):
        self.port = port or free_port()
        self.host = host
        """The address it binds, and its URL names."""
        self.netns = netns
        """The network namespace it runs in (``ip netns``); None: this process's."""
        self.dir = tempfile.mkdtemp(prefix="wa-redis-")
        self.appendonly = appendonly
        self.fsync = fsync
        self.extra = list(extra or [])
        self.password = password
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.proc = subprocess.Popen(
            in_netns(self.netns)
            + [
                binary,
                "--port",
                str(self.port),
                "--bind",
                self.host,
                "--dir",
                self.dir,
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--appendfsync",
                self.fsync,
                *(
                    ("--requirepass", self.password, "--masterauth", self.password)
                    * bool(self.password)
                ),
                *self.extra,
            ]
            # In a namespace of its own, only the drill's namespaces reach it, from outside loopback.
            + (["--protected-mode", "no"] if self.netns else []),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(
            host=self.host, port=self.port, password=self.password or None, socket_connect_timeout=0.5
        )
        wait_for(client.ping, timeout=10)
        client.close()
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, password=self.password or None, decode_responses=True)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def in_netns(netns: str | None) -> list[str]:
    """The command prefix that runs a program in network namespace ``netns`` (none for None)."""
    return ["ip", "netns", "exec", netns] if netns else []


class SentinelGroup:
    """A master, its replicas and three Sentinels watching them, each on a free port, with
    passwords on Redis and on the Sentinels; failover within a few seconds of the master's death.

    ``env()`` is what a gateway process needs to reach the master through the Sentinels."""

    MASTER_NAME = "wa-master"
    REDIS_PASSWORD = "sentinel-test-redis-password-0123"
    SENTINEL_PASSWORD = "sentinel-test-sentinel-password-4567"
    DOWN_AFTER_MS = 1000
    """How long the master may be silent before the Sentinels call it down."""

    def __init__(self, replicas: int = 1, sentinels: int = 3, appendonly: bool = False):
        self.master = RedisServer(
            appendonly=appendonly, fsync="everysec", password=self.REDIS_PASSWORD
        )
        self.replicas = [
            RedisServer(
                appendonly=appendonly,
                fsync="everysec",
                password=self.REDIS_PASSWORD,
                extra=["--replicaof", "127.0.0.1", str(self.master.port)],
            )
            for _ in range(replicas)
        ]
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.dir = Path(tempfile.mkdtemp(prefix="wa-sentinel-"))
        self.sentinels: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        return ";".join(f"sentinel://127.0.0.1:{port}" for port in self.sentinel_ports)

    def env(self) -> dict[str, str]:
        return {
            "REDIS_URL": self.url,
            "REDIS_SENTINEL_MASTER": self.MASTER_NAME,
            "REDIS_PASSWORD": self.REDIS_PASSWORD,
            "REDIS_SENTINEL_PASSWORD": self.SENTINEL_PASSWORD,
        }

    def start(self) -> SentinelGroup:
        self.master.start()
        for replica in self.replicas:
            replica.start()
        # Replicas in sync (not still loading the master's snapshot), so WAIT can count them.
        wait_for(lambda: self._online() == len(self.replicas), timeout=30)
        for port in self.sentinel_ports:
            config = self.dir / f"sentinel-{port}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"requirepass {self.SENTINEL_PASSWORD}\n"
                f"sentinel monitor {self.MASTER_NAME} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel auth-pass {self.MASTER_NAME} {self.REDIS_PASSWORD}\n"
                f"sentinel sentinel-pass {self.SENTINEL_PASSWORD}\n"
                f"sentinel down-after-milliseconds {self.MASTER_NAME} {self.DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {self.MASTER_NAME} 10000\n"
            )
            self.sentinels.append(
                subprocess.Popen(
                    [shutil.which("redis-server") or "redis-server", str(config), "--sentinel"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        # Ready once every Sentinel knows the replicas and the other Sentinels.
        wait_for(
            lambda: all(
                int(info["num-slaves"]) == len(self.replicas)
                and int(info["num-other-sentinels"]) == len(self.sentinel_ports) - 1
                for info in (
                    self.sentinel(port).sentinel_master(self.MASTER_NAME)
                    for port in self.sentinel_ports
                )
            ),
            timeout=30,
        )
        return self

    def _online(self) -> int:
        info = self.master.client().info("replication")
        return sum(
            1 for n in range(info["connected_slaves"]) if info[f"slave{n}"]["state"] == "online"
        )

    def sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(
            port=port, password=self.SENTINEL_PASSWORD, decode_responses=True, socket_timeout=1
        )

    def master_port(self) -> int:
        """The master's port as the first Sentinel that answers sees it."""
        for port in self.sentinel_ports:
            try:
                return int(
                    self.sentinel(port).sentinel_get_master_addr_by_name(self.MASTER_NAME)[1]
                )
            except redis.RedisError:
                continue
        raise RuntimeError("no Sentinel answers")

    def server(self, port: int) -> RedisServer:
        return next(s for s in [self.master, *self.replicas] if s.port == port)

    def crash_master(self) -> RedisServer:
        """SIGKILL the current master; returns its server, to be started again as a replica."""
        server = self.server(self.master_port())
        server.proc.kill()
        server.proc.wait()
        server.proc = None
        return server

    def close(self) -> None:
        for proc in self.sentinels:
            proc.terminate()
            proc.wait(timeout=10)
        for server in [self.master, *self.replicas]:
            server.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Process:
    """A child process whose output goes to a log file the test can read; in network namespace
    ``netns`` if given (``ip netns exec`` becomes the program, so the process id is the same)."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        cwd: Path | None = None,
        netns: str | None = None,
    ):
        self.name = name
        self.netns = netns
        self.log_path = Path(tempfile.mkstemp(prefix=f"wa-{name}-", suffix=".log")[1])
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            in_netns(netns) + argv,
            env=env,
            cwd=cwd or ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a Celery worker and its pool children)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._log.close()


def gateway_env(redis_url: str, api_base_url: str, **extra: str) -> dict[str, str]:
    """The environment of a gateway process for tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WHATSAPP_", "CELERY_"))}
    env.update(TEST_CREDENTIALS)
    env.update(
        REDIS_URL=redis_url,
        WHATSAPP_API_BASE_URL=api_base_url,
        PYTHONUNBUFFERED="1",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    env.update(extra)
    return env


def start_worker(
    env: dict[str, str],
    queues: str = "inbound,context,send.high,send.normal,send.bulk",
    concurrency: int = 2,
    name: str = "worker",
    pool: str = "prefork",
    cwd: Path | None = None,
    netns: str | None = None,
    task_events: bool = False,
) -> Process:
    """A Celery worker consuming ``queues`` (run in ``cwd``, default the project's root), sending
    task events from the start if ``task_events`` (``-E``); returns once it is ready."""
    port_name = f"{name}-{free_port()}"
    proc = Process(
        name,
        [
            str(BIN / "celery"),
            "-A",
            "workers",
            "worker",
            "--queues",
            queues,
            "--hostname",
            f"{port_name}@%h",
            "--pool",
            pool,
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "INFO",
            "--without-mingle",
            "--without-gossip",
            *(["--task-events"] if task_events else []),
        ],
        env,
        cwd,
        netns,
    )
    wait_for(lambda: "ready." in proc.output() or proc.proc.poll() is not None, timeout=60)
    if proc.proc.poll() is not None:
        raise RuntimeError(f"worker exited:\n{proc.output()}")
    return proc


def start_web(
    env: dict[str, str],
    port: int | None = None,
    host: str = "127.0.0.1",
    netns: str | None = None,
) -> tuple[Process, str]:
    """The web app under gunicorn, as the Procfile runs it, on ``host`` (in ``netns``); returns
    it and its base URL."""
    port = port or free_port()
    proc = Process(
        "web",
        [
            str(BIN / "gunicorn"),
            "--bind",
            f"{host}:{port}",
            "--worker-class",
            "gevent",
            "--workers",
            "1",
            "app.web:create_app()",
        ],
        env,
        netns=netns,
    )
    url = f"http://{host}:{port}"
    wait_for(lambda: requests.get(f"{url}/healthz", timeout=1).ok, timeout=30)
    return proc, url


def start_simulator(
    env: dict[str, str],
    port: int,
    webhook_url: str | None,
    status_delay: float = 0.05,
    faults: dict | None = None,
    meta_rules: bool = False,
    extra_args: list[str] | None = None,
    host: str = "127.0.0.1",
    latency_ms: float | None = 0.0,
) -> tuple[Process, str]:
    """The Cloud API simulator on ``host:port``; returns it and its base URL.

    It answers at once (``latency_ms`` 0) unless told otherwise: tests assert behaviour, never
    timings, and Meta's ~150 ms a send would only slow the suite. A test about latency passes its
    median; benchmarks and drills pass None, the simulator's realistic default
    (``SIMULATOR_LATENCY_MS``).

    Unless ``meta_rules``, the rules that depend on a customer's history (the 24-hour window and
    the per-recipient limit) are off, so tests can send to numbers that never wrote.
    """
    argv = [
        str(BIN / "wa-gateway"),
        "simulator",
        "--host",
        host,
        "--port",
        str(port),
        "--status-delay",
        str(status_delay),
    ]
    if webhook_url:
        argv += ["--webhook-url", webhook_url]
    if latency_ms is not None:
        argv += ["--latency-ms", str(latency_ms), "--latency-p99-ms", str(latency_ms * 4)]
    if faults:
        argv += ["--faults", json.dumps(faults)]
    if not meta_rules:
        argv += ["--no-window", "--no-pair-limit"]
    argv += extra_args or []
    proc = Process("simulator", argv, env)
    url = f"http://{host}:{port}"
    wait_for(lambda: requests.get(f"{url}/_sim/health", timeout=1).ok, timeout=30)
    return proc, url


def signed_post(
    url: str, payload: dict | bytes, secret: str | None = None, **kwargs: Any
) -> requests.Response:
    """POST ``payload`` to a webhook URL with Meta's signature header."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    secret = secret or TEST_CREDENTIALS["WHATSAPP_WEBHOOK_SECRET"]
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, secret)}
    return requests.post(url, data=body, headers=headers, timeout=10, **kwargs)


def envelope(value: dict[str, Any]) -> dict[str, Any]:
    """A messages-field webhook from the test sending number around ``value`` (its contacts,
    messages or statuses)."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": TEST_CREDENTIALS["WHATSAPP_BUSINESS_ACCOUNT_ID"],
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": TEST_CREDENTIALS["WHATSAPP_PHONE_NUMBER_ID"],
                            },
                            **value,
                        },
                    }
                ],
            }
        ],
    }


def text_webhook(wa_id: str, text: str, wamid: str | None = None) -> dict[str, Any]:
    """A Meta-shaped webhook carrying one text message from ``wa_id``."""
    wamid = wamid or "wamid.test" + hashlib.sha1(f"{wa_id}{text}{time.time()}".encode()).hexdigest()
    return envelope(
        {
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": wa_id}],
            "messages": [
                {
                    "from": wa_id,
                    "id": wamid,
                    "timestamp": str(int(time.time())),
                    "type": "text",
                    "text": {"body": text},
                }
            ],
        }
    )


class SimulatorThread:
    """The simulator served over real HTTP from a thread of the test process.

    Unless ``meta_rules``, the 24-hour window and the per-recipient limit are off (as in
    :func:`start_simulator`); ``config`` sets any other :class:`SimulatorConfig` field.
    """

    def __init__(self, webhook_url: str | None = None, meta_rules: bool = False, **config: Any):
        from werkzeug.serving import make_server

        from app.simulator.server import SimulatorConfig, create_simulator

        if not meta_rules:
            config.setdefault("enforce_window", False)
            config.setdefault("pair_limit", False)
        # Another token and number id play a second sending number.
        config.setdefault("access_token", TEST_CREDENTIALS["WHATSAPP_ACCESS_TOKEN"])
        config.setdefault("phone_number_id", TEST_CREDENTIALS["WHATSAPP_PHONE_NUMBER_ID"])
        self.config = SimulatorConfig(
            webhook_secret=TEST_CREDENTIALS["WHATSAPP_WEBHOOK_SECRET"],
            webhook_url=webhook_url,
            **config,
        )
        self.app = create_simulator(self.config)
        self.state = self.app.extensions["simulator"]
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def client(self, **kwargs: Any):
        kwargs.setdefault("access_token", self.config.access_token)
        return SimulatorThread.client_for(self.url, self.config.phone_number_id)(**kwargs)

    @staticmethod
    def client_for(url: str, phone_number_id: str = TEST_CREDENTIALS["WHATSAPP_PHONE_NUMBER_ID"]):
        """A factory of Graph clients for the simulator at ``url`` (keyword arguments as
        GraphClient's; the test credentials' token unless given)."""
        from app.whatsapp.client import GraphClient

        def client(**kwargs: Any) -> GraphClient:
            return GraphClient(
                base_url=url,
                version="v23.0",
                phone_number_id=phone_number_id,
                access_token=kwargs.pop("access_token", TEST_CREDENTIALS["WHATSAPP_ACCESS_TOKEN"]),
                **kwargs,
            )

        return client

    def close(self) -> None:
        self.server.shutdown()
        self._thread.join(timeout=5)


class TaskEvents:
    """The task events the worker sends, as Flower receives them."""

    def __init__(self, broker_url: str):
        self.app = Celery(broker=broker_url, set_as_current=False)
        self.events: list[dict] = []
        self._receiver = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self.app.connection() as connection:
            self._receiver = self.app.events.Receiver(
                connection, handlers={"*": self.events.append}
            )
            self._receiver.capture(limit=None, timeout=None, wakeup=False)

    def text(self) -> str:
        return json.dumps(self.events, ensure_ascii=False, default=str)

    def close(self) -> None:
        if self._receiver is not None:
            self._receiver.should_stop = True
        self._thread.join(timeout=5)


def queued_tasks(redis_client: redis.Redis, queue: str) -> list[tuple[str, list, str | None]]:
    """The tasks waiting on ``queue`` in the order workers take them: (name, args, eta)."""
    tasks = []
    for raw in reversed(redis_client.lrange(queue, 0, -1)):  # kombu pushes left, pops right
        message = json.loads(raw)
        args = json.loads(base64.b64decode(message["body"]))[0]
        tasks.append((message["headers"]["task"], args, message["headers"].get("eta")))
    return tasks


def child_pids(pid: int) -> list[int]:
    """The direct children of process ``pid`` (a Celery worker's pool processes)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        children += [int(c) for c in task.read_text().split()]
    return children


def start_beat(env: dict[str, str], netns: str | None = None) -> Process:
    """Celery beat, as the Procfile runs it (in ``netns``); returns once it has started."""
    proc = Process(
        "beat",
        [str(BIN / "celery"), "-A", "workers", "beat", "--loglevel", "INFO"],
        env,
        netns=netns,
    )
    wait_for(lambda: "beat: Starting" in proc.output() or proc.proc.poll() is not None, timeout=60)
    if proc.proc.poll() is not None:
        raise RuntimeError(f"beat exited:\n{proc.output()}")
    return proc


SECOND_NUMBER = "106540352242999"
"""A second sending number, registered with ``wa-gateway numbers add`` in tests."""
SECOND_TOKEN = "EAAsecond-number-token-0123456789abcdef"
"""Its access token: the simulator playing it accepts this one, not the configured number's."""


def start_s3_server() -> tuple[Process, str]:
    """A local S3-compatible server (moto's, installed with the dev extra); returns it and its
    endpoint URL. Its buckets live in its memory and go with it."""
    port = free_port()
    proc = Process(
        "s3", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], dict(os.environ)
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{url}/moto-api/", timeout=1).ok, timeout=30)
    except BaseException:
        proc.stop()
        raise
    return proc, url
