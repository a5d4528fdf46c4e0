"""Webhook ingestion: the gateway's receiver against pywa's inline server and a Redis-list floor.

Every server runs under the Procfile's gunicorn settings; wrk replays unique, validly signed
webhooks on loopback. Reports requests/s and p50/p99 latency at each connection count, the ratio
to pywa, and checks that every 200 the gateway gave is a task held by Redis.

Then the same at 16 connections with the Procfile's inbound worker running (``context,inbound``,
2 processes, the rules responder, the simulator as the Graph API), against pywa in the same step:
the shape in which issue #16 asks for 1.1 times pywa's rate with a p99 no higher than its.

Also the acknowledgement under a slow AI: the same load while the reply takes 200 ms (pywa's
handler sleeps inline; the gateway's responder runs in a worker, off the acknowledgement path).

    python -m bench.ingest --duration 10 --connections 16,64
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import islice

from app.whatsapp.signature import sign
from bench.common import CpuMeter, machine, procfile_web, run, save, today
from tests.stack import (
    RedisServer,
    free_port,
    gateway_env,
    start_simulator,
    start_worker,
    text_webhook,
)

TARGETS = {
    "gateway": "app.web:create_app()",
    "pywa": "bench.baselines:pywa_app()",
    "floor": "bench.baselines:floor_app()",
}
WRK_THREADS = 2
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
CORES = os.cpu_count() or 1
STEPS = ("ingestion", "with_workers", "slow_ai", "in_process")


class SlowAgent:
    """An AI agent endpoint on loopback that takes ``delay`` seconds to answer each question."""

    def __init__(self, delay: float):
        self.delay = delay
        self.calls = 0
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server protocol
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                agent.calls += 1
                time.sleep(agent.delay)
                body = json.dumps({"reply": "Gracias, te respondemos enseguida."}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/agent"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def write_requests(path: str, count: int, secret: str) -> None:
    """``count`` distinct signed text webhooks, one per line: signature, tab, body."""
    with open(path, "w") as out:
        for i in range(count):
            # A question of its own each, so the slow AI is asked every time (no cache hit).
            payload = text_webhook(
                f"57300{i:07d}", f"Hola, pedido {i}", wamid=f"wamid.bench{i:09d}"
            )
            # pywa 4.5 requires the business-scoped user id that newer payloads carry.
            payload["entry"][0]["changes"][0]["value"]["contacts"][0]["user_id"] = f"CO.{i}"
            body = json.dumps(payload, separators=(",", ":"))
            out.write(f"{sign(body.encode(), secret)}\t{body}\n")


def wrk(url: str, connections: int, duration: int, requests_file: str) -> dict:
    env = {**os.environ, "BENCH_REQUESTS": requests_file, "BENCH_THREADS": str(WRK_THREADS)}
    script = os.path.join(os.path.dirname(__file__), "signed_requests.lua")
    out = run(
        [
            "wrk",
            f"-t{WRK_THREADS}",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            script,
            url,
        ],
        env=env,
        timeout=duration + 60,
    )
    latency = {}
    for q, value, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        latency[int(q)] = float(value) * UNITS[unit]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    total = re.search(r"(\d+) requests in", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": latency.get(50),
        "p99_ms": latency.get(99),
        "requests": int(total.group(1)) if total else 0,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


def measure(
    target: str,
    connections: list[int],
    duration: int,
    requests_file: str,
    redis_server: RedisServer,
    extra_env: dict | None = None,
    workers: dict[str, int] | None = None,
) -> dict:
    """Each connection count's rate and latency, with the CPU each request cost the web
    process (all its gunicorn processes) and the ``workers`` running beside it, by pid."""
    port = free_port()
    env = gateway_env(redis_server.url, "http://127.0.0.1:9", **(extra_env or {}))
    proc = procfile_web(TARGETS[target], port, env)
    results = {}
    try:
        for c in connections:
            client = redis_server.client()
            client.flushdb()
            cpu = CpuMeter({"web": proc.pid, "redis": redis_server.proc.pid, **(workers or {})})
            started = time.monotonic()
            result = wrk(f"http://127.0.0.1:{port}/webhooks/whatsapp", c, duration, requests_file)
            elapsed = time.monotonic() - started
            per_request = cpu.per_item_ms(max(result["requests"], 1))
            result["cpu_ms_per_request"] = per_request
            # The share of the machine's cores the workers beside the web took meanwhile.
            result["worker_cpu_share"] = {
                name: round(per_request[name] * result["requests"] / 1000 / elapsed / CORES, 3)
                for name in workers or {}
            }
            if target == "gateway":
                # Every 200 must be a task in Redis: durably enqueued, none dropped.
                result["enqueued"] = client.llen("inbound")
            results[c] = result
            print(
                f"  {target:8s} c={c:<3d} {result['rps']:8.0f} req/s  p50 {result['p50_ms']:.2f} ms"
                f"  p99 {result['p99_ms']:.2f} ms  non-2xx {result['non_2xx']}"
                f"  web CPU {per_request['web']:.3f} ms/request"
                + "".join(
                    f"  {n} {v:.0%} of the cores" for n, v in result["worker_cpu_share"].items()
                ),
                flush=True,
            )
    finally:
        proc.stop()
    return results


def with_workers(duration: int, requests_file: str, redis_server: RedisServer) -> dict:
    """The gateway and pywa at 16 connections while the Procfile's inbound worker consumes."""
    sim_port = free_port()
    env = gateway_env(redis_server.url, f"http://127.0.0.1:{sim_port}", RESPONDER_BACKEND="rules")
    simulator, _ = start_simulator(env, sim_port, webhook_url=None)
    worker = None
    try:
        worker = start_worker(env, queues="context,inbound", concurrency=2, name="inbound")
        graph = {
            "WHATSAPP_API_BASE_URL": env["WHATSAPP_API_BASE_URL"],
            "RESPONDER_BACKEND": "rules",
        }
        beside = {"inbound": worker.pid}
        return {
            t: measure(t, [16], duration, requests_file, redis_server, graph, beside)
            for t in ("gateway", "pywa")
        }
    finally:
        if worker is not None:
            worker.stop()
        simulator.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", default="16,64")
    parser.add_argument("--requests", type=int, default=60_000, help="unique signed webhooks")
    parser.add_argument("--slow-ai", type=float, default=0.2, help="seconds the slow AI takes")
    parser.add_argument("--steps", default=",".join(STEPS), help="which of " + ", ".join(STEPS))
    args = parser.parse_args(argv)
    steps = args.steps.split(",")
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    connections = [int(c) for c in args.connections.split(",")]
    workdir = tempfile.mkdtemp(prefix="wa-bench-")
    requests_file = os.path.join(workdir, "requests.txt")
    secret = gateway_env("redis://x", "http://x")["WHATSAPP_WEBHOOK_SECRET"]
    write_requests(requests_file, args.requests, secret)
    # The gateway's own Redis runs with its append-only file synced every second.
    redis_server = RedisServer(appendonly=True, fsync="everysec").start()
    report: dict = {"machine": machine(), "date": today(), "duration_s": args.duration}
    try:
        if "ingestion" in steps:
            print("ingestion:", flush=True)
            report["ingestion"] = {
                t: measure(t, connections, args.duration, requests_file, redis_server)
                for t in TARGETS
            }
        if "with_workers" in steps:
            print("ingestion with the inbound worker running, 16 connections:", flush=True)
            report["with_workers"] = with_workers(args.duration, requests_file, redis_server)
        if "slow_ai" in steps:
            slow_ai(args.slow_ai, args.duration, requests_file, redis_server, report)
        if "in_process" in steps:
            print("the receiver called in process, no server:", flush=True)
            report["in_process"] = in_process(requests_file, redis_server)
    finally:
        redis_server.close()
        shutil.rmtree(workdir, ignore_errors=True)
    save("ingest", report)
    for c in connections if "ingestion" in steps else []:
        ing = report["ingestion"]
        ratio = ing["gateway"][c]["rps"] / ing["pywa"][c]["rps"]
        floor = ing["gateway"][c]["rps"] / ing["floor"][c]["rps"]
        print(f"c={c}: gateway/pywa {ratio:.2f}, gateway/floor {floor:.2f}", flush=True)
    if "with_workers" in steps:
        both = report["with_workers"]
        ratio = both["gateway"][16]["rps"] / both["pywa"][16]["rps"]
        print(f"with the inbound worker, c=16: gateway/pywa {ratio:.2f}", flush=True)
    return 0


def in_process(requests_file: str, redis_server: RedisServer, count: int = 3000) -> dict:
    """CPU per webhook of the gateway's WSGI application called in this process, without a
    server or a client: the least noisy measure of the receiver's own Python on a shared
    machine. Logs go through the web's configuration (JSON, redacted) to /dev/null."""
    import io
    import logging.config
    import runpy

    from app.config import get_settings
    from app.web import create_app

    env = gateway_env(redis_server.url, "http://127.0.0.1:9")
    saved = dict(os.environ)
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        logging_config = runpy.run_path("gunicorn.conf.py")["logconfig_dict"]
        logging.config.dictConfig(logging_config)
        with open(os.devnull, "w") as devnull:
            for handler in logging.getLogger().handlers:
                handler.setStream(devnull)
            app = create_app()
            with open(requests_file) as lines:
                signed = [line.rstrip("\n").split("\t", 1) for line in islice(lines, count)]
            statuses: dict[str, int] = {}

            def start_response(status: str, headers: list, exc_info=None) -> None:
                statuses[status] = statuses.get(status, 0) + 1

            environs = []
            for signature, body in signed:
                data = body.encode()
                environs.append(
                    {
                        "REQUEST_METHOD": "POST",
                        "PATH_INFO": "/webhooks/whatsapp",
                        "SERVER_NAME": "127.0.0.1",
                        "SERVER_PORT": "8000",
                        "SERVER_PROTOCOL": "HTTP/1.1",
                        "CONTENT_TYPE": "application/json",
                        "CONTENT_LENGTH": str(len(data)),
                        "HTTP_X_HUB_SIGNATURE_256": signature,
                        "wsgi.input": io.BytesIO(data),
                        "wsgi.url_scheme": "http",
                    }
                )
            redis_server.client().flushdb()
            started = time.process_time()
            for environ in environs:
                b"".join(app(environ, start_response))
            used = time.process_time() - started
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()
    result = {"cpu_us_per_webhook": round(used / len(environs) * 1e6, 1), "statuses": statuses}
    print(f"  in process: {result['cpu_us_per_webhook']:.0f} us CPU per webhook {statuses}")
    return result


def slow_ai(
    delay: float, duration: int, requests_file: str, redis_server: RedisServer, report: dict
) -> None:
    """The gateway and pywa at 16 connections while the reply takes ``delay`` seconds."""
    print(f"acknowledgement with a {delay * 1000:.0f} ms AI, 16 connections:", flush=True)
    # pywa's handler sleeps inline; the gateway's workers ask a real agent over HTTP that
    # takes as long, while the webhook is acknowledged without waiting for it.
    agent = SlowAgent(delay)
    slow = {
        "BENCH_HANDLER_DELAY": str(delay),
        "RESPONDER_BACKEND": "http",
        "AGENT_WEBHOOK_URL": agent.url,
        "RESPONDER_TIMEOUT": "5",
    }
    worker = start_worker(
        gateway_env(redis_server.url, "http://127.0.0.1:9", **slow),
        queues="context,inbound",
        concurrency=4,
    )
    try:
        report["slow_ai"] = {
            "gateway": measure("gateway", [16], duration, requests_file, redis_server, slow),
            "pywa": measure("pywa", [16], duration, requests_file, redis_server, slow),
            "agent_calls": agent.calls,
        }
    finally:
        worker.stop()
        agent.close()


if __name__ == "__main__":
    sys.exit(main())
