"""Priority lanes under a campaign: the high lane's latency with 10,000 bulk messages queued.

Starts a Redis of its own, the simulator (without status webhooks, so that only sending is
measured) answering at Meta's speed (lognormal, median ``--latency-ms``, 200 by default), the web
app under gunicorn and the send workers as the Procfile runs them: ``send`` on every lane and
``send-high`` on the high lane alone (``--pool``, ``--concurrency`` and ``--high-concurrency``
try other shapes; ``--high-concurrency 0`` leaves the high lane to ``send``). Then:

1. baseline: high-priority messages with nothing else queued;
2. loaded: 10,000 bulk messages through the batch API, then the same number of high-priority
   messages sent while the bulk backlog drains at the number's rate limit.

Latency is from accept (the record's ``created_at``, set when the API accepted the message) to
the simulator's receipt, both on this machine's clock. Prints a JSON summary and writes it to
``bench/results/priority.json``.

    .venv/bin/python bench/priority.py [--bulk 10000] [--high 100] [--interval 0.2]
        [--latency-ms 200] [--pool prefork] [--concurrency 4] [--high-concurrency 16]
        [--batch-concurrency N] [--no-drain]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.config import get_settings  # noqa: E402
from app.delivery.messages import MessageStore  # noqa: E402
from bench.common import machine, procfile_web, save, today  # noqa: E402
from tests.stack import (  # noqa: E402
    RedisServer,
    free_port,
    gateway_env,
    start_simulator,
    start_worker,
    wait_for,
)

API_KEY = "bench-api-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def template_to(to: str, priority: str) -> dict:
    return {
        "to": to,
        "type": "template",
        "template": {"name": "order_update", "language": {"code": "es"}},
        "priority": priority,
    }


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Bench:
    def __init__(self, web_url: str, simulator_url: str, store: MessageStore):
        self.web_url = web_url
        self.simulator_url = simulator_url
        self.store = store

    def received(self) -> dict[str, float]:
        """Recipient to the simulator's receipt time."""
        messages = requests.get(f"{self.simulator_url}/_sim/messages", timeout=60).json()
        return {m["body"]["to"]: m["at"] for m in messages["messages"]}

    def send_high(self, prefix: str, count: int, interval: float) -> dict[str, str]:
        """``count`` high-priority messages, one every ``interval`` s; recipient to message id."""
        ids = {}
        for i in range(count):
            to = f"{prefix}{i:05d}"
            response = requests.post(
                f"{self.web_url}/v1/messages",
                json=template_to(to, "high"),
                headers=AUTH,
                timeout=30,
            )
            response.raise_for_status()
            ids[to] = response.json()["id"]
            time.sleep(interval)
        return ids

    def latencies(self, ids: dict[str, str], timeout: float = 120) -> list[float]:
        def all_received() -> dict[str, float] | None:
            received = self.received()
            return received if all(to in received for to in ids) else None

        received = wait_for(all_received, timeout=timeout, interval=0.5)
        return [received[to] - self.store.get(i).created_at for to, i in ids.items()]


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "n": len(latencies),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bulk", type=int, default=10_000)
    parser.add_argument("--high", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between high sends")
    parser.add_argument("--concurrency", type=int, default=4, help="the send worker's pool size")
    parser.add_argument("--pool", default="prefork", choices=["prefork", "threads", "gevent"])
    parser.add_argument(
        "--high-concurrency",
        type=int,
        default=16,
        help="threads of the send-high worker (0: none, send serves the high lane too)",
    )
    parser.add_argument(
        "--batch-concurrency",
        type=int,
        default=None,
        help="a batch task's sends in flight (default: SEND_BATCH_CONCURRENCY's)",
    )
    parser.add_argument("--latency-ms", type=float, default=200.0, help="the Graph API's median")
    parser.add_argument(
        "--no-drain", action="store_true", help="stop once the high lane is measured"
    )
    args = parser.parse_args(argv)

    redis_server = RedisServer().start()
    sim_port = free_port()
    shape = {}
    if args.batch_concurrency is not None:
        shape["SEND_BATCH_CONCURRENCY"] = str(args.batch_concurrency)
    env = gateway_env(
        redis_server.url, f"http://127.0.0.1:{sim_port}", GATEWAY_API_KEYS=API_KEY, **shape
    )
    processes = []
    try:
        simulator, simulator_url = start_simulator(
            env, sim_port, webhook_url=None, latency_ms=args.latency_ms
        )
        processes.append(simulator)
        web_port = free_port()
        web = procfile_web("app.web:create_app()", web_port, env)
        web_url = f"http://127.0.0.1:{web_port}"
        processes.append(web)
        worker = start_worker(
            env,
            queues="send.high,send.normal,send.bulk",
            concurrency=args.concurrency,
            pool=args.pool,
        )
        processes.append(worker)
        if args.high_concurrency:
            high_worker = start_worker(
                env,
                queues="send.high",
                concurrency=args.high_concurrency,
                pool="threads",
                name="send-high",
            )
            processes.append(high_worker)
        bench = Bench(web_url, simulator_url, MessageStore(redis_server.client()))

        baseline = bench.latencies(bench.send_high("5730010", args.high, args.interval))

        started = time.time()
        bulk_to = [f"5730020{i:05d}" for i in range(args.bulk)]
        bulk_ids: list[str] = []
        for start in range(0, len(bulk_to), 1000):
            chunk = [template_to(to, "bulk") for to in bulk_to[start : start + 1000]]
            response = requests.post(
                f"{web_url}/v1/messages/batch", json={"messages": chunk}, headers=AUTH, timeout=120
            )
            response.raise_for_status()
            bulk_ids += [m["id"] for m in response.json()["messages"]]
        queued_in = time.time() - started
        backlog = redis_server.client().llen("send.bulk")
        high_started = time.time()
        loaded = bench.latencies(bench.send_high("5730030", args.high, args.interval))
        high_took = time.time() - high_started
        bulk_done_during = sum(1 for to in bench.received() if to.startswith("5730020"))
        result = {
            "machine": machine(),
            "date": today(),
            "latency_ms": args.latency_ms,
            "pool": args.pool,
            "concurrency": args.concurrency,
            "high_worker_threads": args.high_concurrency,
            "batch_concurrency": args.batch_concurrency or get_settings().send_batch_concurrency,
            "bulk_messages": args.bulk,
            "bulk_enqueued_in_s": round(queued_in, 1),
            "bulk_lane_backlog_when_high_started": backlog,
            "bulk_sent_while_high_measured": bulk_done_during,
            "bulk_rate_while_high_measured": round(bulk_done_during / (time.time() - started), 1),
            "high_measured_in_s": round(high_took, 1),
            "high_idle": summary(baseline),
            "high_under_bulk_backlog": summary(loaded),
        }
        high_p95 = result["high_under_bulk_backlog"]["p95_ms"]
        result["p95_ratio_loaded_to_idle"] = round(high_p95 / result["high_idle"]["p95_ms"], 2)
        if args.no_drain:
            print(json.dumps(result, indent=2))
            save("priority", result)
            return 0

        wait_for(
            lambda: sum(1 for to in bench.received() if to.startswith("5730020")) >= args.bulk,
            timeout=args.bulk / 20 + 300,
            interval=2,
        )
        drained_in = time.time() - started
        # What a reply would wait without lanes: the bulk messages' own accept-to-receipt time.
        received = bench.received()
        pipe = redis_server.client().pipeline()
        for message_id in bulk_ids:
            pipe.hget(MessageStore.key(message_id), "created_at")
        bulk_latency = [
            received[to] - float(created)
            for to, created in zip(bulk_to, pipe.execute(), strict=True)
        ]
        result["bulk_drained_in_s"] = round(drained_in, 1)
        result["bulk_rate_msgs_per_s"] = round(args.bulk / drained_in, 1)
        result["bulk_lane_itself"] = summary(bulk_latency)
        result["p95_ratio_bulk_lane_to_high"] = round(
            result["bulk_lane_itself"]["p95_ms"] / high_p95, 1
        )
        print(json.dumps(result, indent=2))
        save("priority", result)
    finally:
        for proc in reversed(processes):
            proc.stop()
        redis_server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
