"""Drill: Redis stops for 10 s in the middle of a webhook flood, then comes back.

Every webhook must end up either answered 503 (and accepted when redelivered, as Meta does) or
processed; none may be lost, and the workers must resume on their own. The gateway runs as in
production: gunicorn with the Procfile's settings, a Celery worker, the simulator as Meta.

    python -m drills.redis_outage --webhooks 3000 --outage 10
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from app.whatsapp.signature import SIGNATURE_HEADER, sign
from bench.common import procfile_web
from drills.harness import finish
from tests.stack import (
    TEST_CREDENTIALS,
    RedisServer,
    free_port,
    gateway_env,
    start_simulator,
    start_worker,
    text_webhook,
)

SECRET = TEST_CREDENTIALS["WHATSAPP_WEBHOOK_SECRET"]


def deliver(
    session: requests.Session,
    url: str,
    body: bytes,
    stats: dict,
    lock: threading.Lock,
    deadline: float,
) -> None:
    """Post one webhook the way Meta does: again, with backoff, until it is answered 200."""
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, SECRET)}
    delay, refused = 0.2, False
    while time.monotonic() < deadline:
        try:
            status = session.post(url, data=body, headers=headers, timeout=5).status_code
        except requests.RequestException:
            status = None
        if status == 200:
            with lock:
                stats["accepted"] += 1
                stats["accepted_after_refusal"] += refused
            return
        refused = True
        with lock:
            stats["refusals"][str(status)] = stats["refusals"].get(str(status), 0) + 1
        time.sleep(delay)
        delay = min(delay * 2, 5.0)
    with lock:
        stats["never_accepted"] += 1


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--webhooks", type=int, default=3000)
    parser.add_argument("--outage", type=float, default=10.0, help="seconds Redis stays down")
    parser.add_argument("--crash", action="store_true", help="SIGKILL Redis instead of stopping it")
    parser.add_argument("--rate", type=float, default=150.0, help="webhooks per second offered")
    parser.add_argument(
        "--visibility-timeout",
        type=int,
        default=60,
        help="CELERY_VISIBILITY_TIMEOUT: how late a task in flight at the outage runs",
    )
    return parser


def run(args: argparse.Namespace) -> dict:
    started = time.monotonic()

    redis_server = RedisServer(appendonly=True, fsync="everysec").start()
    sim_port, web_port = free_port(), free_port()
    env = gateway_env(
        redis_server.url,
        f"http://127.0.0.1:{sim_port}",
        CELERY_VISIBILITY_TIMEOUT=str(args.visibility_timeout),
    )
    processes = []
    stats = {
        "offered": args.webhooks,
        "accepted": 0,
        "accepted_after_refusal": 0,
        "never_accepted": 0,
        "refusals": {},
    }
    try:
        sim, sim_url = start_simulator(env, sim_port, None, latency_ms=None)  # no status webhooks
        processes.append(sim)
        web = procfile_web("app.web:create_app()", web_port, env)
        processes.append(web)
        # The Procfile's pools: conversations and sends each have their own workers.
        worker = start_worker(env, queues="context,inbound", concurrency=3, name="inbound")
        processes.append(worker)
        sender = start_worker(
            env, queues="send.high,send.normal,send.bulk", concurrency=2, name="send"
        )
        processes.append(sender)
        url = f"http://127.0.0.1:{web_port}/webhooks/whatsapp"
        bodies = [
            json.dumps(text_webhook(f"57301{i:07d}", "Hola", wamid=f"wamid.drill{i:08d}")).encode()
            for i in range(args.webhooks)
        ]
        lock = threading.Lock()
        session = requests.Session()
        deadline = time.monotonic() + 300
        outage = {}

        def break_redis() -> None:
            time.sleep(min(3.0, args.webhooks / args.rate / 3))
            outage["down_at"] = time.monotonic()
            if args.crash:
                redis_server.proc.kill()
                redis_server.proc.wait()
                redis_server.proc = None
            else:
                redis_server.stop()
            time.sleep(args.outage)
            redis_server.start()
            outage["up_at"] = time.time()

        breaker = threading.Thread(target=break_redis)
        breaker.start()
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=32) as pool:
            for i, body in enumerate(bodies):
                pool.submit(deliver, session, url, body, stats, lock, deadline)
                time.sleep(max(0.0, (i + 1) / args.rate - (time.monotonic() - started)))
        breaker.join()

        def replies() -> dict[str, int]:
            sent = requests.get(f"{sim_url}/_sim/messages", timeout=10).json()["messages"]
            counts: dict[str, int] = {}
            for item in sent:
                wamid = item["body"].get("context", {}).get("message_id")
                counts[wamid] = counts.get(wamid, 0) + 1
            return counts

        def first_reply_after_restart() -> float | None:
            sent = requests.get(f"{sim_url}/_sim/messages", timeout=10).json()["messages"]
            return min((m["at"] for m in sent if m["at"] > outage["up_at"]), default=None)

        # Wait for the backlog to drain; tasks in flight when Redis went away come back after the
        # visibility timeout. Give up once nothing has moved for longer than that.
        last, still = -1, time.monotonic()
        while len(counts := replies()) < stats["accepted"]:
            if len(counts) != last:
                last, still = len(counts), time.monotonic()
            elif time.monotonic() - still > args.visibility_timeout + 30:
                break
            time.sleep(1)
        client = redis_server.client()
        queued = sum(client.llen(q) for q in ("inbound", "context", "send.high"))
        queued += client.hlen("unacked")
        wanted = {f"wamid.drill{i:08d}" for i in range(args.webhooks)}
        resumed_at = first_reply_after_restart()
        result = {
            **stats,
            "processed": len(wanted & set(counts)),
            "lost": len(wanted - set(counts)),
            "still_queued_or_unacked": queued,
            "duplicated": sum(n - 1 for n in counts.values() if n > 1),
            "outage_seconds": args.outage,
            "visibility_timeout": args.visibility_timeout,
            "mode": "SIGKILL" if args.crash else "stop",
            "workers_resumed_after_s": None
            if resumed_at is None
            else round(resumed_at - outage["up_at"], 2),
            "seconds": round(time.monotonic() - started, 1),
            "passed": not wanted - set(counts),  # none lost
        }
    finally:
        for proc in reversed(processes):
            proc.stop()
        redis_server.close()
    print(f"logs: {worker.log_path} {sender.log_path} {web.log_path}", file=sys.stderr)
    return result


def main(argv: list[str] | None = None) -> int:
    return finish(run(parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
