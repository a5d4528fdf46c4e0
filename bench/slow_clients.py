"""Slow clients: connections trickling their headers one byte a second, while /healthz is probed
and signed webhooks are posted. Reports p50/p99 and timeouts of both, per server setup.

Each setup serves the gateway on loopback over a Redis of its own; ``procfile`` is the web
command of the Procfile as it stands. The slow connections are all closed before the server stops.

    python -m bench.slow_clients --setups gthread,procfile --slow 200 --duration 20

With ``--ingest 10``, each setup is first measured as ``bench.ingest`` measures ingestion (wrk
replaying unique signed webhooks for that many seconds at 16 and 64 connections), so a setup
that holds off slow clients is also seen not to cost throughput, in the same run.
"""

from __future__ import annotations

import argparse
import json
import shlex
import socket
import sys
import threading
import time
from collections.abc import Callable

import requests

from app.whatsapp.signature import SIGNATURE_HEADER, sign
from bench.common import machine, percentile, save, today
from tests.stack import (
    BIN,
    ROOT,
    TEST_CREDENTIALS,
    Process,
    RedisServer,
    free_port,
    gateway_env,
    text_webhook,
    wait_for,
)

SETUPS = {
    "gthread": "gunicorn --bind 127.0.0.1:{port} --worker-class gthread --workers 2 --threads 8 "
    "--timeout 30 --graceful-timeout 20 --keep-alive 5",
    "gevent": "gunicorn --bind 127.0.0.1:{port} --worker-class gevent --workers 2 "
    "--worker-connections 1000 --timeout 30 --graceful-timeout 20 --keep-alive 5",
    "waitress": "waitress-serve --listen 127.0.0.1:{port} --threads 16 --channel-timeout 30 "
    "--connection-limit 1000 --call",
}
"""Server setups measured; each serves ``app.web:create_app()`` (the Procfile's is ``procfile``)."""

PROBE_TIMEOUT = 5.0
"""Seconds after which a probe counts as timed out, as a load balancer's health check would."""

PROBE_INTERVAL = 0.05
"""Seconds between two probes of one kind: 20 a second each."""


def command(setup: str, port: int) -> list[str]:
    """The argv that serves the gateway with ``setup`` on ``port``."""
    if setup == "procfile":
        from app.devstack import read_procfile

        line = dict(read_procfile(str(ROOT / "Procfile")))["web"]
        return ["bash", "-c", f"exec {line}"]
    target = "app.web:create_app" if setup == "waitress" else "app.web:create_app()"
    argv = shlex.split(SETUPS[setup].format(port=port)) + [target]
    return [str(BIN / argv[0]), *argv[1:]]


class Tricklers:
    """``count`` connections that send a request's headers one byte a second, never finishing."""

    def __init__(self, port: int, count: int):
        self.port = port
        self.count = count
        self.sockets: list[socket.socket] = []
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Tricklers:
        self._thread.start()
        return self

    def _open(self) -> None:
        while len(self.sockets) < self.count and not self._stop.is_set():
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            except OSError:
                self.refused += 1
                return
            sock.setblocking(False)
            self.sockets.append(sock)

    def _run(self) -> None:
        header = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100_000
        position = 0
        while not self._stop.is_set():
            self._open()  # a connection the server closed is replaced, as an attacker would
            for sock in list(self.sockets):
                try:
                    sock.send(header[position : position + 1])
                except OSError:
                    sock.close()
                    self.sockets.remove(sock)
            position = (position + 1) % len(header)
            self._stop.wait(1.0)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()


def probe(name: str, call: Callable[[], int], until: float, results: dict[str, dict]) -> None:
    """Call ``call`` every PROBE_INTERVAL until ``until``; record latency, errors and timeouts."""
    latencies, timeouts, errors = [], 0, 0
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            status = call()
            if status == 200:
                latencies.append((time.monotonic() - started) * 1000)
            else:
                errors += 1
        except requests.Timeout:
            timeouts += 1
        except requests.RequestException:
            errors += 1
        time.sleep(max(0.0, PROBE_INTERVAL - (time.monotonic() - started)))
    results[name] = {
        "answered": len(latencies),
        "timeouts": timeouts,
        "errors": errors,
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies, default=float("nan")), 1),
    }


def measure(
    setup: str, slow: int, duration: float, redis_server: RedisServer, ingest: int = 0
) -> dict:
    """Serve with ``setup``; optionally measure ingestion for ``ingest`` seconds; then open
    ``slow`` tricklers and probe for ``duration`` seconds."""
    port = free_port()
    env = gateway_env(redis_server.url, "http://127.0.0.1:9", PORT=str(port))
    server = Process(f"web-{setup}", command(setup, port), env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    tricklers = None
    results: dict[str, dict] = {}
    try:
        wait_for(lambda: requests.get(f"{url}/healthz", timeout=1).ok, timeout=30)
        if ingest:
            results["ingest"] = ingestion(url, ingest, redis_server)
        tricklers = Tricklers(port, slow).start()
        wait_for(lambda: len(tricklers.sockets) >= slow or tricklers.refused, timeout=30)
        time.sleep(2)  # every trickler has sent its first bytes: a thread is waiting on each
        secret = TEST_CREDENTIALS["WHATSAPP_WEBHOOK_SECRET"]
        counter = iter(range(10**9))

        def healthz() -> int:
            return requests.get(f"{url}/healthz", timeout=PROBE_TIMEOUT).status_code

        def webhook() -> int:
            body = json.dumps(text_webhook("573001234567", f"hola {next(counter)}")).encode()
            headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, secret)}
            return requests.post(
                f"{url}/webhooks/whatsapp", data=body, headers=headers, timeout=PROBE_TIMEOUT
            ).status_code

        until = time.monotonic() + duration
        probes = [
            threading.Thread(target=probe, args=(name, call, until, results))
            for name, call in (("healthz", healthz), ("webhook", webhook))
        ]
        for thread in probes:
            thread.start()
        for thread in probes:
            thread.join()
        results["slow_connections_open"] = len(tricklers.sockets)
        results["slow_connections_refused"] = tricklers.refused
        return results
    finally:
        if tricklers is not None:
            tricklers.close()
        server.stop()


def ingestion(url: str, duration: int, redis_server: RedisServer) -> dict:
    """Requests/s and latency of signed webhooks replayed by wrk, as ``bench.ingest`` runs it."""
    from bench.ingest import write_requests, wrk

    requests_file = str(ROOT / "bench" / "results" / "slow_clients_requests.txt")
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    write_requests(requests_file, 60_000, TEST_CREDENTIALS["WHATSAPP_WEBHOOK_SECRET"])
    results = {}
    for connections in (16, 64):
        redis_server.client().flushdb()
        result = wrk(f"{url}/webhooks/whatsapp", connections, duration, requests_file)
        results[connections] = result
        print(
            f"  ingest c={connections:<3d} {result['rps']:6.0f} req/s  p50 {result['p50_ms']:.2f} ms"
            f"  p99 {result['p99_ms']:.2f} ms  non-2xx {result['non_2xx']}",
            flush=True,
        )
    redis_server.client().flushdb()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setups", default="gthread,gevent,waitress,procfile")
    parser.add_argument("--slow", type=int, default=200, help="trickling connections")
    parser.add_argument("--duration", type=float, default=20, help="seconds of probing")
    parser.add_argument("--ingest", type=int, default=0, help="seconds of wrk per connection count")
    args = parser.parse_args(argv)
    report = {"date": today(), "machine": machine(), "slow": args.slow, "setups": {}}
    # As bench.ingest: the append-only file synced every second, as the embedded Redis does.
    redis_server = RedisServer(appendonly=True, fsync="everysec").start()
    try:
        for setup in args.setups.split(","):
            print(f"{setup}: {args.slow} slow connections for {args.duration:.0f} s", flush=True)
            report["setups"][setup] = result = measure(
                setup, args.slow, args.duration, redis_server, args.ingest
            )
            for name in ("healthz", "webhook"):
                r = result[name]
                print(
                    f"  {name:8} p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  max {r['max_ms']} ms"
                    f"  answered {r['answered']}  timeouts {r['timeouts']}  errors {r['errors']}",
                    flush=True,
                )
    finally:
        redis_server.close()
    save("slow_clients", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
