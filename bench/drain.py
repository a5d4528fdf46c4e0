"""Outbound drain: messages through the send API to the simulator, against a plain HTTP ceiling.

Starts a Redis of its own (append-only file synced every second, as the embedded one), the
simulator without status webhooks and without a throughput limit (so only sending is measured),
the web app with the Procfile's gunicorn settings and one send worker as the Procfile runs it.
The number's rate limit is Meta's highest tier, 1,000 messages/s.

1. ceiling: a plain threaded ``requests`` loop posts the same bodies to the same simulator, with
   as many threads as the send pool has processes and then four times as many; the faster run is
   the ceiling of the HTTP path on this machine.
2. gateway: the messages go through ``POST /v1/messages/batch`` (1,000 a call, from one client)
   and the send worker drains them; end-to-end rate is from the first API call to the simulator's
   receipt of the last message. Every message must reach the simulator exactly once.

    python -m bench.drain --messages 20000

The simulator answers at once by default: the drain goal and its ceiling are zero-latency figures.
``--latency-ms`` gives it Meta's answer times (lognormal, that median), and ``--rate`` a number's
rate limit, to measure throughput against latency; with either, the plain HTTP loop is skipped
and the rate is compared with the limit instead.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import threading
import time

import redis
import requests

from app.config import DEFAULT_API_VERSION
from app.whatsapp.messages import validate_message
from bench.common import CpuMeter, machine, procfile_web, save, today
from tests.stack import (
    TEST_CREDENTIALS,
    RedisServer,
    free_port,
    gateway_env,
    start_simulator,
    start_worker,
    wait_for,
)

API_KEY = "bench-api-key-0123456789abcdef"
NUMBER = TEST_CREDENTIALS["WHATSAPP_PHONE_NUMBER_ID"]
TOKEN = TEST_CREDENTIALS["WHATSAPP_ACCESS_TOKEN"]
GRAPH_VERSION = DEFAULT_API_VERSION
TEMPLATE = {"name": "order_update", "language": {"code": "es"}}


def recipients(prefix: int, count: int) -> list[str]:
    """``count`` valid, distinct Colombian mobile numbers."""
    return [f"5730{prefix}{i:07d}" for i in range(count)]


def api_message(to: str, priority: str) -> dict:
    return {"to": to, "type": "template", "template": TEMPLATE, "priority": priority}


def graph_body(to: str) -> dict:
    """What the gateway's client posts to Meta for ``api_message(to)``: the same validation."""
    return validate_message({"to": to, "type": "template", "template": TEMPLATE})


class Simulator:
    def __init__(self, url: str):
        self.url = url

    def clear(self) -> None:
        requests.delete(f"{self.url}/_sim/messages", timeout=30).raise_for_status()

    def count(self) -> int:
        return requests.get(f"{self.url}/_sim/stats", timeout=30).json()["received"]

    def received(self) -> list[dict]:
        return requests.get(f"{self.url}/_sim/messages", timeout=120).json()["messages"]


def ceiling(sim: Simulator, bodies: list[dict], threads: int, pids: dict[str, int]) -> dict:
    """Post ``bodies`` from ``threads`` threads, each with its own keep-alive session."""
    sim.clear()
    url = f"{sim.url}/{GRAPH_VERSION}/{NUMBER}/messages"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    failures = collections.Counter()

    def post(share: list[dict]) -> None:
        session = requests.Session()
        for body in share:
            response = session.post(url, json=body, headers=headers, timeout=30)
            if response.status_code != 200:
                failures[response.status_code] += 1

    shares = [bodies[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=post, args=(share,)) for share in shares]
    meter = CpuMeter(pids)
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    return {
        "threads": threads,
        "messages": len(bodies),
        "seconds": round(elapsed, 2),
        "msgs_per_s": round(len(bodies) / elapsed, 1),
        "failures": dict(failures),
        "cpu_ms_per_msg": meter.per_item_ms(len(bodies)),
    }


def redis_commands(redis_client: redis.Redis, items: int) -> dict[str, float]:
    """Commands Redis ran per item since its statistics were last reset, by command (the
    broker's included), most frequent first, and in all."""
    stats = redis_client.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): row["calls"] / items for name, row in stats.items()}
    calls.pop("info", None)
    per_item = dict(sorted(calls.items(), key=lambda kv: -kv[1]))
    per_item["total"] = sum(calls.values())
    return {name: round(n, 2) for name, n in per_item.items() if n >= 0.01}


def gateway(
    sim: Simulator,
    web_url: str,
    recipients_: list[str],
    priority: str,
    pids: dict[str, int],
    redis_client: redis.Redis,
) -> dict:
    """Send ``recipients_`` one template each through the batch API and wait for the drain."""
    sim.clear()
    redis_client.config_resetstat()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {API_KEY}"
    meter = CpuMeter(pids)
    started_wall, started = time.time(), time.perf_counter()
    for i in range(0, len(recipients_), 1000):
        chunk = [api_message(to, priority) for to in recipients_[i : i + 1000]]
        response = session.post(
            f"{web_url}/v1/messages/batch", json={"messages": chunk}, timeout=120
        )
        response.raise_for_status()
    accepted_in = time.perf_counter() - started
    wait_for(lambda: sim.count() >= len(recipients_), timeout=len(recipients_) / 20, interval=0.5)
    cpu = meter.per_item_ms(len(recipients_))
    commands = redis_commands(redis_client, len(recipients_))
    # Each read of a client's socket is one round trip (a pipeline's commands arrive together).
    reads = redis_client.info("stats")["total_reads_processed"] / len(recipients_)
    received = sim.received()
    last = max(m["at"] for m in received)
    elapsed = last - started_wall
    counts = collections.Counter(m["body"]["to"] for m in received)
    wanted = set(recipients_)
    return {
        "priority": priority,
        "messages": len(recipients_),
        "accepted_in_s": round(accepted_in, 2),
        "seconds": round(elapsed, 2),
        "msgs_per_s": round(len(recipients_) / elapsed, 1),
        "received": sum(counts[to] for to in wanted),
        "missing": sum(1 for to in wanted if counts[to] == 0),
        "duplicated": sum(counts[to] - 1 for to in wanted if counts[to] > 1),
        "cpu_ms_per_msg": cpu,
        "redis_commands_per_msg": commands,
        "redis_reads_per_msg": round(reads, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=4, help="send pool processes")
    parser.add_argument("--pool", default="prefork", choices=["prefork", "threads", "gevent"])
    parser.add_argument("--priority", default="bulk", choices=["high", "normal", "bulk"])
    parser.add_argument("--latency-ms", type=float, default=0.0, help="the Graph API's median")
    parser.add_argument("--rate", type=float, default=None, help="the number's messages/s")
    args = parser.parse_args(argv)
    against_ceiling = not args.latency_ms and args.rate is None
    args.rate = args.rate or 1000.0

    redis_server = RedisServer(appendonly=True, fsync="everysec").start()
    sim_port, web_port = free_port(), free_port()
    env = gateway_env(
        redis_server.url,
        f"http://127.0.0.1:{sim_port}",
        GATEWAY_API_KEYS=API_KEY,
        SEND_RATE_LIMITS=f"{NUMBER}={args.rate:g}",
    )
    processes = []
    report: dict = {
        "machine": machine(),
        "date": today(),
        "send_concurrency": args.concurrency,
        "send_pool": args.pool,
        "latency_ms": args.latency_ms,
        "rate_limit": args.rate,
    }
    try:
        simulator, sim_url = start_simulator(
            env,
            sim_port,
            webhook_url=None,
            extra_args=["--throughput", "0"],
            latency_ms=args.latency_ms,
        )
        processes.append(simulator)
        sim = Simulator(sim_url)
        if against_ceiling:
            bodies = [graph_body(to) for to in recipients(1, args.messages)]
            print("ceiling (threaded requests):", flush=True)
            runs = []
            for threads in (args.concurrency, args.concurrency * 4):
                runs.append(ceiling(sim, bodies, threads, {"simulator": simulator.pid}))
                print(f"  {json.dumps(runs[-1])}", flush=True)
            report["ceiling"] = max(runs, key=lambda r: r["msgs_per_s"])
            report["ceiling_runs"] = runs

        web = procfile_web("app.web:create_app()", web_port, env)
        processes.append(web)
        worker = start_worker(
            env,
            queues="send.high,send.normal,send.bulk",
            concurrency=args.concurrency,
            pool=args.pool,
        )
        processes.append(worker)
        pids = {
            "simulator": simulator.pid,
            "web": web.pid,
            "worker": worker.pid,
            "redis": redis_server.proc.pid,
        }
        print("gateway (batch API, send worker):", flush=True)
        report["gateway"] = gateway(
            sim,
            f"http://127.0.0.1:{web_port}",
            recipients(2, args.messages),
            args.priority,
            pids,
            redis.Redis.from_url(redis_server.url, decode_responses=True),
        )
        print(f"  {json.dumps(report['gateway'])}", flush=True)
    finally:
        for proc in reversed(processes):
            proc.stop()
        redis_server.close()
    if "ceiling" in report:
        ratio = report["gateway"]["msgs_per_s"] / report["ceiling"]["msgs_per_s"]
        report["ratio_to_ceiling"] = round(ratio, 2)
        print(f"gateway/ceiling {ratio:.2f}", flush=True)
    else:
        report["ratio_to_rate_limit"] = round(report["gateway"]["msgs_per_s"] / args.rate, 2)
        print(f"gateway/rate limit {report['ratio_to_rate_limit']:.2f}", flush=True)
    save("drain" if "ceiling" in report else "drain_latency", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
