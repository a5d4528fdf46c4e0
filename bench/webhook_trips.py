"""Redis round trips and CPU of one webhook task, in this process, without Celery's worker around it.

The reply-capacity benchmark (``bench.replies``) measures whole processes; this isolates the
task's own work. It starts a Redis of its own and the simulator (zero latency) in a thread, and
runs ``inbound.process_webhook`` through ``apply`` with the rules responder:

1. **customer messages**: ``--messages`` text webhooks, one per new customer; each records the
   turn, answers it and records the reply (the send is queued on the broker, not run).
2. **statuses**: each reply is sent (``outbound.send_message`` through ``apply``, not measured),
   the simulator's ``sent``, ``delivered`` and ``read`` webhooks are collected; those of the first
   half of the customers are each run through ``process_webhook``, as a webhook that carries a
   message with them is.
3. **statuses in their lane**: those of the other half are pushed into the status lane, as the
   receiver pushes a status-only webhook, and ``inbound.apply_statuses`` (through ``apply``)
   applies them, a hundred to a batch: totals over the lane, per webhook.

Per webhook: the round trips (one write to a Redis socket, a pipeline or a transaction counting
once), the commands in them, and this thread's CPU time. ``--show`` lists the round trips of the
last webhook of each kind, in order.

    python -m bench.webhook_trips --messages 300 --show
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from tests.stack import RedisServer, gateway_env, text_webhook, wait_for


class RoundTrips:
    """Counts each write to a Redis socket, and the commands it carries, while it is on."""

    def __init__(self) -> None:
        self.trips: list[list[str]] = []
        self.on = False
        self.scripts: dict[str, str] = {}

    def install(self) -> None:
        from redis.connection import AbstractConnection

        original = AbstractConnection.send_packed_command
        trips = self

        def send_packed_command(conn, command, check_health=True):
            if trips.on:
                trips.trips.append(trips.names(command))
            return original(conn, command, check_health)

        AbstractConnection.send_packed_command = send_packed_command

    def names(self, command: Any) -> list[str]:
        data = b"".join([command] if isinstance(command, bytes | str) else command)
        if isinstance(data, str):
            data = data.encode()
        names, pos = [], 0
        while pos < len(data) and data[pos : pos + 1] == b"*":
            end = data.index(b"\r\n", pos)
            count = int(data[pos + 1 : end])
            pos = end + 2
            args = []
            for _ in range(count):
                end = data.index(b"\r\n", pos)
                size = int(data[pos + 1 : end])
                args.append(data[end + 2 : end + 2 + size])
                pos = end + 2 + size + 2
            name = args[0].decode().upper()
            if name == "EVALSHA":
                sha = args[1].decode()
                name += " " + self.scripts.get(sha, sha[:8]) + " " + args[3].decode()[:40]
            elif name == "EVAL":
                name += " (script) " + args[3].decode(errors="replace")[:40]
            elif len(args) > 1:
                name += " " + args[1].decode(errors="replace")[:60]
            names.append(name)
        return names

    def learn_scripts(self) -> None:
        """Name the Lua scripts by where they are defined, for ``--show``."""
        import gc

        from redis.commands.core import Script

        for obj in gc.get_objects():
            if isinstance(obj, Script) and obj.sha:
                self.scripts[obj.sha] = obj.script.strip().splitlines()[0][:30]


def measure(
    trips: RoundTrips, run: Callable[[dict], Any], payloads: list[dict]
) -> tuple[list[float], list[int], list[int], list[list[list[str]]]]:
    """CPU ms, round trips and commands of each ``run(payload)``, and each run's round trips."""
    cpu, counts, commands = [], [], []
    every: list[list[list[str]]] = []
    for payload in payloads:
        trips.trips = []
        trips.on = True
        start = time.thread_time()
        run(payload)
        cpu.append((time.thread_time() - start) * 1000)
        trips.on = False
        counts.append(len(trips.trips))
        commands.append(sum(map(len, trips.trips)))
        every.append(trips.trips)
    return cpu, counts, commands, every


def status_of(payload: dict) -> str:
    return payload["entry"][0]["changes"][0]["value"]["statuses"][0]["status"]


def recipient_of(payload: dict) -> str:
    return payload["entry"][0]["changes"][0]["value"]["statuses"][0]["recipient_id"]


def through_lane(trips: RoundTrips, payloads: list[dict]) -> dict[str, float]:
    """CPU, round trips and commands per webhook of ``payloads`` applied through the lane."""
    from app import keys
    from tasks.inbound import apply_statuses
    from tasks.statuslane import status_lane

    lane = status_lane()
    for n, payload in enumerate(payloads):
        lane.push(json.dumps(payload), dedup_key=f"bench:lane:{n}", dedup_ttl=600)
    trips.trips = []
    trips.on = True
    start = time.thread_time()
    while lane.redis.llen(keys.STATUS_LANE):
        result = apply_statuses.apply()
        if result.failed():
            raise RuntimeError(result.traceback)
    cpu = (time.thread_time() - start) * 1000
    trips.on = False
    count = len(payloads)
    return {
        "webhooks": count,
        "cpu_ms_mean": round(cpu / count, 3),
        "round_trips_mean": round(len(trips.trips) / count, 2),
        "commands_mean": round(sum(map(len, trips.trips)) / count, 2),
    }


def summary(cpu: list[float], counts: list[int], commands: list[int]) -> dict[str, float]:
    return {
        "cpu_ms_median": round(statistics.median(cpu), 3),
        "cpu_ms_mean": round(statistics.fmean(cpu), 3),
        "round_trips_median": statistics.median(counts),
        "round_trips_max": max(counts),
        "commands_median": statistics.median(commands),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--show", action="store_true", help="list the last webhooks' round trips")
    args = parser.parse_args(argv)

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = RedisServer(appendonly=False).start()
    from tests.simulator.receiver import WebhookReceiver

    receiver = WebhookReceiver()
    from tests.stack import SimulatorThread

    sim = SimulatorThread(webhook_url=receiver.url, status_delay=0.0)
    try:
        os.environ.update(gateway_env(server.url, sim.url, RESPONDER_BACKEND="rules"))
        os.environ["SEND_RATE_LIMIT"] = "1000"
        import workers  # noqa: F401 - the one Celery app, so the tasks bind to it
        from app.conversations.inbound import reply_id
        from tasks.inbound import process_webhook
        from tasks.outbound import send_message

        trips = RoundTrips()
        trips.install()

        def process(payload: dict) -> Any:
            result = process_webhook.apply(args=(payload,))
            if result.failed():
                raise RuntimeError(result.traceback)
            return result.result

        total = args.warmup + args.messages
        customers = [f"57300{i:07d}" for i in range(total)]
        messages = [text_webhook(wa_id, "Hola, quiero saber el horario") for wa_id in customers]
        measure(trips, process, messages[: args.warmup])
        trips.learn_scripts()
        m_cpu, m_trips, m_cmds, m_all = measure(trips, process, messages[args.warmup :])

        wamids = [m["entry"][0]["changes"][0]["value"]["messages"][0]["id"] for m in messages]
        for wamid in wamids:
            send_message.apply(args=(reply_id(wamid),))
        wait_for(lambda: len(receiver.payloads) >= 3 * total, timeout=120)
        order = ["sent", "delivered", "read"]
        statuses = sorted(receiver.payloads, key=lambda p: order.index(status_of(p)))
        warm = statuses[: 3 * args.warmup]
        measure(trips, process, warm)
        trips.learn_scripts()
        lane_customers = set(customers[args.warmup + args.messages // 2 :])
        measured = [p for p in statuses[3 * args.warmup :] if recipient_of(p) not in lane_customers]
        s_cpu, s_trips, s_cmds, all_trips = measure(trips, process, measured)
        in_lane = [p for p in statuses if recipient_of(p) in lane_customers]
        report = {
            "customer_message": summary(m_cpu, m_trips, m_cmds),
            "status": summary(s_cpu, s_trips, s_cmds),
            "status_in_lane": through_lane(trips, in_lane),
        }
        if args.show:
            shown = [("customer message", m_all[-1])]
            for name in ("sent", "delivered", "read"):
                last = [n for n, p in enumerate(measured) if status_of(p) == name][-1]
                shown.append((f"status {name}", all_trips[last]))
            for kind, last in shown:
                print(f"-- {kind}: {len(last)} round trips", file=sys.stderr)
                for i, trip in enumerate(last, 1):
                    print(f"{i:3d}. {' | '.join(trip)}", file=sys.stderr)
        print(json.dumps(report, indent=2))
    finally:
        sim.close()
        receiver.close()
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
