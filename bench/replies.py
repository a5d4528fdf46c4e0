"""Reply capacity: signed customer webhooks in, the rules responder's replies out at the simulator.

Starts a Redis of its own (append-only file synced every second), the simulator with zero Graph
latency and its status webhooks on (sent, delivered, read come back to the gateway, as Meta's do),
the web app with the Procfile's gunicorn settings and the two workers of the Procfile that a
conversation goes through, with the Procfile's defaults: ``inbound`` (``context,inbound``, 2
processes) and ``send`` (the three send lanes, prefork, 4 processes). The number's send limit is
1,000 messages/s (Meta's top tier), so the limiter does not set the pace.

Each conversation is a new customer whose one text message arrives as a signed webhook; its
latency runs from just before the POST to the simulator's receipt of the reply (``/_sim/messages``).

- **offered load**: conversations at a steady rate (default 10, 25, 50 and 100/s, ``--seconds``
  each, open loop: a slow answer does not slow the arrivals), then a wait until every reply is in
  (or ``--drain-timeout``). Reported per rate: reply p50/p99 and the conversations answered per
  second over the step.
- **capacity**: ``--burst`` conversations posted at once by 16 threads; conversations answered
  per second from the first POST to the last reply.

Per conversation, over the capacity run: the Celery tasks the workers ran (from their logs, by
task name) and the commands Redis processed (``INFO stats``, idle polling included).

    python -m bench.replies --rates 10,25,50,100 --seconds 10 --burst 1000
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import string
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from app import keys
from app.whatsapp.signature import SIGNATURE_HEADER, sign
from bench.common import CpuMeter, machine, percentile, procfile_web, save, today
from tests.stack import (
    TEST_CREDENTIALS,
    RedisServer,
    free_port,
    gateway_env,
    start_simulator,
    start_worker,
    text_webhook,
    wait_for,
)

NUMBER = TEST_CREDENTIALS["WHATSAPP_PHONE_NUMBER_ID"]
SECRET = TEST_CREDENTIALS["WHATSAPP_WEBHOOK_SECRET"]
TARGET_CAPACITY = 100.0
"""Conversations per second the pipeline should answer (issue #16, goal 4)."""
TARGET_P99_MS = 150.0
TARGET_P99_RATE = 50
"""The offered rate at which the reply p99 must stay under ``TARGET_P99_MS``."""
TASK_LINE = re.compile(r"Task ([\w.]+)\[[^\]]+\] succeeded")
TARGET_BYTES_PER_MESSAGE = 500
"""Redis bytes a delivered and read message may hold for its retention (issue #16, goal 3)."""

OWNERS = {
    "message": ("MESSAGE", "WAMID_INDEX", "EARLY_STATUSES", "SEND_LOCK"),
    # The webhooks of a conversation: its message and its reply's three statuses.
    "conversation": (
        "CONVERSATION",
        "PROFILE",
        "HANDOFF",
        "INBOUND_MESSAGE",
        "AI_REPLY",
        "WEBHOOK_SEEN",
    ),
    "customer": ("CUSTOMER", "CUSTOMER_ID", "CUSTOMER_WINDOW", "RATE_PAIR"),
    "number": ("RATE_SENDER",),
}
"""The key templates of ``app.keys`` that each thing of the memory table holds."""


def template_patterns() -> list[tuple[str, re.Pattern]]:
    """Every key template of ``app.keys`` as a regular expression, the most specific first."""
    found = []
    for name in dir(keys):
        value = getattr(keys, name)
        if name.isupper() and isinstance(value, str) and value.startswith(keys.PREFIX + ":"):
            regex = "".join(
                re.escape(literal) + ("[^:]+" if field is not None else "")
                for literal, field, _, _ in string.Formatter().parse(value)
            )
            found.append((name, re.compile(f"^{regex}$")))
    return sorted(found, key=lambda item: -len(item[1].pattern))


def memory_table(client) -> dict:
    """Bytes Redis holds by key template, and per message, conversation, customer and number."""
    patterns = template_patterns()
    by_template: dict[str, dict] = {}
    for key in client.scan_iter(count=1000):
        name = next((n for n, regex in patterns if regex.match(key)), "other")
        entry = by_template.setdefault(name, {"keys": 0, "bytes": 0, "ttl_days": []})
        entry["keys"] += 1
        entry["bytes"] += client.memory_usage(key, samples=0) or 0
        entry["ttl_days"].append(round(client.ttl(key) / keys.DAY, 2))
    for entry in by_template.values():
        entry["ttl_days"] = max(entry["ttl_days"])  # -1: no expiry
    counts = {
        "message": by_template.get("MESSAGE", {}).get("keys", 0),
        "conversation": by_template.get("CONVERSATION", {}).get("keys", 0),
        "customer": by_template.get("CUSTOMER", {}).get("keys", 0),
        "number": 1,
    }
    per = {}
    for owner, names in OWNERS.items():
        total = sum(by_template.get(n, {}).get("bytes", 0) for n in names)
        per[owner] = {
            "count": counts[owner],
            "bytes_each": round(total / max(1, counts[owner])),
            "templates": {
                n: round(by_template[n]["bytes"] / max(1, counts[owner]))
                for n in names
                if n in by_template
            },
        }
    return {"by_template": by_template, "per": per}


class Conversations:
    """Posts one signed text webhook per new customer and reads the replies' arrival."""

    def __init__(self, webhook_url: str, sim_url: str):
        self.webhook_url = webhook_url
        self.sim_url = sim_url
        self.sent: dict[str, float] = {}  # customer -> just before their webhook was posted
        self.failures = 0
        self._local = threading.local()
        self._lock = threading.Lock()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def post(self, customer: str, question: str) -> None:
        body = text_webhook(customer, question, wamid=f"wamid.bench{customer}")
        data = json.dumps(body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(data, SECRET)}
        started = time.time()
        response = self._session().post(self.webhook_url, data=data, headers=headers, timeout=30)
        with self._lock:
            if response.status_code == 200:
                self.sent[customer] = started
            else:
                self.failures += 1

    def replies(self) -> dict[str, float]:
        """Customer to the simulator's receipt of the first text sent to them."""
        got = requests.get(f"{self.sim_url}/_sim/messages", timeout=60).json()["messages"]
        arrived: dict[str, float] = {}
        for m in got:
            to = m["body"].get("to")
            if m["body"].get("type") == "text" and to and to not in arrived:
                arrived[to] = m["at"]
        return arrived

    def wait(self, customers: list[str], timeout: float) -> dict[str, float]:
        """The replies to ``customers`` once all are in, or what came within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            arrived = self.replies()
            if all(c in arrived for c in customers) or time.monotonic() > deadline:
                return {c: arrived[c] for c in customers if c in arrived}
            time.sleep(0.5)


def offered(conv: Conversations, prefix: str, rate: float, seconds: float, timeout: float) -> dict:
    """Conversations at ``rate``/s for ``seconds``, open loop; their reply latencies."""
    count = int(rate * seconds)
    customers = [f"{prefix}{i:07d}" for i in range(count)]
    start = time.time() + 0.2

    def at_its_time(i: int) -> None:
        time.sleep(max(0.0, start + i / rate - time.time()))
        conv.post(customers[i], f"Hola, ¿a qué hora abren? Pedido {prefix}{i}")

    with ThreadPoolExecutor(max_workers=64) as pool:
        list(pool.map(at_its_time, range(count)))
    arrived = conv.wait(customers, timeout)
    latencies = [arrived[c] - conv.sent[c] for c in arrived if c in conv.sent]
    last = max(arrived.values(), default=start)
    return {
        "offered_per_s": rate,
        "conversations": count,
        "answered": len(arrived),
        "answered_per_s": round(len(arrived) / max(1e-9, last - start), 1),
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(max(latencies, default=float("nan")) * 1000, 1),
    }


def settle(redis_client, timeout: float) -> bool:
    """Wait until the queues a conversation goes through are empty, then a moment more; False
    if they were not within ``timeout``."""
    queues = ("inbound", "context", "send.high")
    try:
        wait_for(lambda: not any(redis_client.llen(q) for q in queues), timeout, interval=0.5)
    except TimeoutError:
        return False
    time.sleep(2)
    return True


def task_counts(workers) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for worker in workers:
        counts.update(TASK_LINE.findall(worker.output()))
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="10,25,50,100", help="offered conversations/s")
    parser.add_argument("--seconds", type=float, default=10, help="seconds per offered rate")
    parser.add_argument("--burst", type=int, default=1000, help="conversations for the capacity")
    parser.add_argument("--drain-timeout", type=float, default=60, help="most seconds to wait")
    args = parser.parse_args(argv)

    redis_server = RedisServer(appendonly=True, fsync="everysec").start()
    sim_port, web_port = free_port(), free_port()
    web_url = f"http://127.0.0.1:{web_port}"
    env = gateway_env(
        redis_server.url,
        f"http://127.0.0.1:{sim_port}",
        RESPONDER_BACKEND="rules",
        SEND_RATE_LIMITS=f"{NUMBER}=1000",
    )
    report: dict = {"machine": machine(), "date": today(), "seconds_per_rate": args.seconds}
    processes = []
    redis_client = redis_server.client()
    try:
        simulator, sim_url = start_simulator(
            env,
            sim_port,
            webhook_url=f"{web_url}/webhooks/whatsapp",
            status_delay=0.0,
            extra_args=["--throughput", "0"],
        )
        processes.append(simulator)
        web = procfile_web("app.web:create_app()", web_port, env)
        processes.append(web)
        inbound = start_worker(env, queues="context,inbound", concurrency=2, name="inbound")
        send = start_worker(
            env, queues="send.high,send.normal,send.bulk", concurrency=4, name="send"
        )
        processes += [inbound, send]
        conv = Conversations(f"{web_url}/webhooks/whatsapp", sim_url)

        # A few conversations first: imports, connection pools and caches warm up.
        offered(conv, "57320", 5, 2, args.drain_timeout)

        steps = []
        for n, rate in enumerate(float(r) for r in args.rates.split(",")):
            step = offered(conv, f"5731{n}", rate, args.seconds, args.drain_timeout)
            steps.append(step)
            # The next step starts from an idle pipeline: what this one left queued (replies not
            # in within the timeout, the statuses of the last ones) is worked off first.
            step["settled"] = settle(redis_client, args.drain_timeout + rate * args.seconds / 5)
            print(f"  offered {rate:g}/s: {step}", flush=True)
        report["offered"] = steps

        before_tasks = task_counts([inbound, send])
        before_commands = redis_client.info("stats")["total_commands_processed"]
        meter = CpuMeter(
            {
                "web": web.pid,
                "inbound": inbound.pid,
                "send": send.pid,
                "simulator": simulator.pid,
                "redis": redis_server.proc.pid,
            }
        )
        customers = [f"57330{i:07d}" for i in range(args.burst)]
        started = time.time()
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(
                pool.map(lambda c: conv.post(c, f"Hola, ¿a qué hora abren? Pedido {c}"), customers)
            )
        posted = time.time() - started
        arrived = conv.wait(customers, args.drain_timeout + args.burst / 10)
        elapsed = max(arrived.values(), default=started) - started
        # The status webhooks of the last replies come a moment later; count them too.
        settle(redis_client, 60)
        tasks = task_counts([inbound, send]) - before_tasks
        commands = redis_client.info("stats")["total_commands_processed"] - before_commands
        answered = len(arrived)
        report["capacity"] = {
            "conversations": args.burst,
            "answered": answered,
            "posted_in_s": round(posted, 2),
            "seconds": round(elapsed, 2),
            "conversations_per_s": round(answered / max(1e-9, elapsed), 1),
            "tasks_per_conversation": {
                name: round(n / max(1, answered), 2) for name, n in sorted(tasks.items())
            },
            "tasks_per_conversation_total": round(sum(tasks.values()) / max(1, answered), 2),
            "redis_commands_per_conversation": round(commands / max(1, answered), 1),
            "cpu_ms_per_conversation": meter.per_item_ms(max(1, answered)),
            "webhooks_refused": conv.failures,
        }
        print(f"  capacity: {report['capacity']}", flush=True)
        report["memory"] = memory_table(redis_client)
        print(f"  Redis bytes: {json.dumps(report['memory']['per'])}", flush=True)
    finally:
        for proc in reversed(processes):
            proc.stop()
        redis_server.close()

    at_target = [s for s in report["offered"] if s["offered_per_s"] == TARGET_P99_RATE]
    report["targets"] = {
        "bytes_per_message": TARGET_BYTES_PER_MESSAGE,
        "capacity_per_s": TARGET_CAPACITY,
        "p99_ms": TARGET_P99_MS,
        "p99_at_offered_per_s": TARGET_P99_RATE,
    }
    report["p99_ms_at_target_rate"] = at_target[0]["p99_ms"] if at_target else None
    save("replies", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
