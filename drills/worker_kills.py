"""Drill: the send worker is killed with SIGKILL every few seconds while 10,000 messages flow.

The worker and its pool processes die together, holding whatever they had taken from the broker,
and a new worker starts each time. No message may be lost: each ends ``read`` (or, if its task
was in flight at more kills than ``TASK_MAX_REDELIVERIES`` allows, dead-lettered as ``poison``).
A duplicate is possible only for a send in flight at a kill, between Meta accepting it and the
gateway recording its ``wamid``; the drill checks that every duplicate was such a send.

    python -m drills.worker_kills --messages 10000 --every 3 5
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from typing import Any

from app.delivery.messages import QUEUED, SENDING, MessageStore
from drills.harness import FAST_SENDS, drill_stack, finish, recipients


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument(
        "--every",
        type=float,
        nargs=2,
        default=(3.0, 5.0),
        metavar=("MIN", "MAX"),
        help="seconds a worker runs before it is killed, drawn uniformly from MIN to MAX",
    )
    parser.add_argument("--concurrency", type=int, default=4, help="the send worker's processes")
    parser.add_argument("--max-kills", type=int, default=120)
    parser.add_argument("--seed", type=int, default=None)
    return parser


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    to = recipients(11, args.messages)
    started = time.monotonic()
    with drill_stack(simulator_args=["--throughput", "0"], **FAST_SENDS) as drill:
        worker = drill.worker(concurrency=args.concurrency)
        ids = drill.submit(to)
        store = MessageStore(drill.redis.client())
        in_flight_at_kills: set[str] = set()
        kills = 0
        # Kill until nothing is left to send: the last worker then runs to the end.
        while kills < args.max_kills:
            time.sleep(rng.uniform(*args.every))
            statuses = drill.statuses(ids)
            if not any(s in (QUEUED, SENDING) for s in statuses.values()):
                break
            drill.kill(worker)
            kills += 1
            # Right after the kill, a message still ``sending`` was in flight in a dead process.
            in_flight_at_kills |= {i for i, s in drill.statuses(ids).items() if s == SENDING}
            worker = drill.worker(concurrency=args.concurrency)
        sending_done = time.monotonic() - started
        statuses = drill.settle(ids, timeout=240, still=60)
        result = drill.outcome(ids, to, statuses)
        # Each duplicate: was its message in flight at a kill, and are the wamids of the copies
        # Meta got before the last unknown to the gateway (Meta answered, and the process died
        # before recording the answer)?
        counts = drill.count(to)
        wamids: dict[str, list[str]] = {}
        for item in drill.received():
            wamids.setdefault(item["body"]["to"], []).append(item["wamid"])
        in_flight_to = {store.get(i).to for i in in_flight_at_kills}
        duplicated = [t for t, n in counts.items() if n > 1]
        explained = sum(
            1
            for t in duplicated
            if t in in_flight_to and all(store.id_for_wamid(w) is None for w in wamids[t][:-1])
        )
        result.update(
            {
                "kills": kills,
                "worker_ran_s": list(args.every),
                "in_flight_at_kills": len(in_flight_at_kills),
                "duplicated_messages": len(duplicated),
                "duplicates_explained": explained,
                "recovered_by_sweep": drill.recovered_by_sweep(),
                "never_received": sum(1 for t in to if counts[t] == 0),
                "seconds_killing": round(sending_done, 1),
                "seconds": round(time.monotonic() - started, 1),
            }
        )
    result["passed"] = result["lost"] == 0 and explained == len(duplicated)
    return result


def main(argv: list[str] | None = None) -> int:
    return finish(run(parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
