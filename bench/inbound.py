"""Inbound work per core: CPU per status webhook and per customer message, by process.

The sizing guide (docs/SCALING.md) needs what one inbound worker core handles. On a shared
machine wall time says little, so this measures CPU time (``/proc/<pid>/stat``, pool processes
included) of each process per item, less what it uses idle (Celery's polling, measured for
``--idle`` seconds first), and derives items per second per core from it.

1. **statuses**: ``--messages`` bulk templates through the batch API; the simulator answers each
   and delivers its ``sent``, ``delivered`` and ``read`` webhooks to the web app; the inbound
   worker applies them. Measured until every message is ``read``; per status webhook.
2. **customer messages**: ``--messages`` signed text webhooks, one per customer, posted to the
   web app; the inbound worker records each turn, answers it (the rules responder) and queues
   the reply. No send worker runs in this phase, so the figure is the inbound side alone.
   Measured until the inbound and context queues are empty; per message.
3. **the same work in this process**: ``--messages`` more such webhooks handed straight to the
   inbound task's function (``tasks.inbound.handle``), against the same Redis and simulator, its
   log lines formatted as the worker's (to /dev/null): CPU per message of this process and of
   Redis without Celery (no broker round trips, no hand-off to a pool process, no task guard).
   Against phase 2 it is what the task path around the work costs.

    python -m bench.inbound --messages 2000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from app.delivery.messages import READ, MessageStore
from app.whatsapp.signature import SIGNATURE_HEADER, sign
from bench.common import CpuMeter, machine, procfile_web, queue_batches, save, today
from bench.drain import API_KEY, api_message, recipients
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

SECRET = TEST_CREDENTIALS["WHATSAPP_WEBHOOK_SECRET"]
STATUSES_PER_MESSAGE = 3
"""``sent``, ``delivered`` and ``read``: the webhooks the simulator delivers for each send."""


def idle_rates(pids: dict[str, int], seconds: float) -> dict[str, float]:
    """CPU milliseconds per second each process uses with nothing to do."""
    meter = CpuMeter(pids)
    time.sleep(seconds)
    return {name: ms / seconds for name, ms in meter.per_item_ms(1).items()}


def net_ms(used: dict[str, float], idle: dict[str, float], seconds: float, items: int) -> dict:
    """CPU milliseconds per item, less the idle use over the same ``seconds``."""
    net = {
        name: round(max(0.0, ms - idle.get(name, 0.0) * seconds / items), 3)
        for name, ms in used.items()
        if name != "total"
    }
    net["total"] = round(sum(net.values()), 3)
    return net


def drained(client, queues: list[str]) -> bool:
    return not any(client.llen(q) for q in queues) and not client.hlen("unacked")


def statuses(
    web_url: str, redis_client, pids: dict[str, int], idle: dict[str, float], count: int
) -> dict:
    meter = CpuMeter(pids)
    started = time.perf_counter()
    ids = queue_batches(web_url, API_KEY, [api_message(to, "bulk") for to in recipients(4, count)])
    store = MessageStore(redis_client)

    def all_read() -> bool:
        pipe = redis_client.pipeline(transaction=False)
        for message_id in ids:
            pipe.hget(store.key(message_id), "status")
        return all(status == READ for status in pipe.execute())

    wait_for(all_read, timeout=count / 5 + 120, interval=1.0)
    webhooks = count * STATUSES_PER_MESSAGE
    seconds = time.perf_counter() - started
    used = meter.per_item_ms(webhooks)
    return {
        "messages": count,
        "status_webhooks": webhooks,
        "seconds": round(seconds, 1),
        "cpu_ms_per_status_webhook": used,
        "net_cpu_ms_per_status_webhook": net_ms(used, idle, seconds, webhooks),
    }


def customer_messages(
    web_url: str, redis_client, pids: dict[str, int], idle: dict[str, float], count: int
) -> dict:
    bodies = [
        json.dumps(text_webhook(to, "Hola, ¿tienen envío a Medellín?")).encode()
        for to in recipients(5, count)
    ]
    session = requests.Session()

    def post(body: bytes) -> int:
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, SECRET)}
        return session.post(f"{web_url}/webhooks/whatsapp", data=body, headers=headers).status_code

    meter = CpuMeter(pids)
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, bodies))
    wait_for(
        lambda: drained(redis_client, ["inbound", "context"]),
        timeout=count / 5 + 120,
        interval=0.5,
    )
    seconds = time.perf_counter() - started
    used = meter.per_item_ms(count)
    return {
        "messages": count,
        "answered_200": sum(1 for a in answers if a == 200),
        "seconds": round(seconds, 1),
        "cpu_ms_per_message": used,
        "net_cpu_ms_per_message": net_ms(used, idle, seconds, count),
    }


def in_process(env: dict[str, str], redis_pid: int, count: int, warm: int = 200) -> dict:
    """Phase 3: CPU per customer message of ``tasks.inbound.handle`` called in this process."""
    import importlib
    import logging

    from app.config import get_settings
    from app.ops.logging import configure_logging

    payloads = [
        text_webhook(to, "Hola, ¿tienen envío a Medellín?") for to in recipients(6, count + warm)
    ]
    saved = dict(os.environ)
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        importlib.import_module("workers")  # the Celery app, configured from this environment
        handle = importlib.import_module("tasks.inbound").handle
        with open(os.devnull, "w") as devnull:
            configure_logging("INFO")
            for handler in logging.getLogger().handlers:
                handler.setStream(devnull)
            for i, payload in enumerate(payloads[:warm]):
                handle(payload, f"warm-{i}")
            meter = CpuMeter({"redis": redis_pid})
            for i, payload in enumerate(payloads[warm:]):
                handle(payload, f"in-process-{i}")
            used = meter.per_item_ms(count)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()
        logging.getLogger().handlers.clear()
    return {"messages": count, "cpu_ms_per_message": {"handle": used["client"], **used}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--idle", type=float, default=10, help="seconds of idle measurement")
    parser.add_argument("--pool", default="prefork", choices=["prefork", "threads", "solo"])
    args = parser.parse_args(argv)
    redis_server = RedisServer(appendonly=True, fsync="everysec").start()
    sim_port, web_port = free_port(), free_port()
    env = gateway_env(
        redis_server.url,
        f"http://127.0.0.1:{sim_port}",
        GATEWAY_API_KEYS=API_KEY,
        SEND_RATE_LIMIT="1000",
    )
    processes = []
    report: dict = {"machine": machine(), "date": today()}
    try:
        simulator, _ = start_simulator(
            env,
            sim_port,
            f"http://127.0.0.1:{web_port}/webhooks/whatsapp",
            status_delay=0.01,
            extra_args=["--throughput", "0"],
        )
        processes.append(simulator)
        web = procfile_web("app.web:create_app()", web_port, env)
        processes.append(web)
        inbound = start_worker(
            env, queues="context,inbound", concurrency=2, name="inbound", pool=args.pool
        )
        processes.append(inbound)
        send = start_worker(env, queues="send.high,send.normal,send.bulk", concurrency=2)
        processes.append(send)
        pids = {
            "web": web.pid,
            "inbound_worker": inbound.pid,
            "send_worker": send.pid,
            "redis": redis_server.proc.pid,
            "simulator": simulator.pid,
        }
        client = redis_server.client()
        idle = idle_rates(pids, args.idle)
        report["idle_cpu_ms_per_s"] = {k: round(v, 2) for k, v in idle.items()}
        report["statuses"] = statuses(
            f"http://127.0.0.1:{web_port}", client, pids, idle, args.messages
        )
        print(json.dumps(report["statuses"]), flush=True)
        send.stop()
        processes.remove(send)
        del pids["send_worker"]
        report["customer_messages"] = customer_messages(
            f"http://127.0.0.1:{web_port}", client, pids, idle, args.messages
        )
        print(json.dumps(report["customer_messages"]), flush=True)
        report["in_process"] = in_process(env, redis_server.proc.pid, args.messages)
        print(json.dumps(report["in_process"]), flush=True)
    finally:
        for proc in reversed(processes):
            proc.stop()
        redis_server.close()
    save("inbound", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
