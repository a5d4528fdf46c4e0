"""Drill: one poison message among 1,000 good ones.

The simulator hangs on every send to one recipient (the ``hang_recipients`` fault), and the drill
kills the pool process stuck in that send each time, as an out-of-memory killer or a crashing
C extension would: a message whose send kills its worker, every time. The good messages must all
be delivered meanwhile, and the poison one dead-lettered as ``poison`` after
``TASK_MAX_REDELIVERIES`` (3) redeliveries, instead of killing workers for ever.

    python -m drills.poison_message --messages 1000
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import Any

from app.delivery.dead_letters import DeadLetterStore
from app.delivery.messages import DEAD_LETTERED, SENDING, MessageStore
from drills.harness import drill_stack, finish, recipients
from tests.stack import wait_for

VISIBILITY_TIMEOUT = 30
"""Longer than the other drills': the task's soft time limit (0.4 of it, 12 s) must leave the
drill time to find the hung process and kill it before the limit ends the send as a timeout."""


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000, help="good messages")
    parser.add_argument("--concurrency", type=int, default=4, help="the send worker's processes")
    return parser


def run(args: argparse.Namespace) -> dict[str, Any]:
    good = recipients(13, args.messages)
    poison = recipients(14, 1)[0]
    half = len(good) // 2
    started = time.monotonic()
    with drill_stack(visibility_timeout=VISIBILITY_TIMEOUT) as drill:
        drill.faults(hang_recipients=[poison], hang_seconds=3600)
        drill.worker(concurrency=args.concurrency, GRAPH_READ_TIMEOUT="3600")
        ids = drill.submit(good[:half] + [poison] + good[half:])
        poison_id = ids[half]
        store = MessageStore(drill.redis.client())
        kills = 0
        while kills < 10:
            # The poison's send is under way (it will hang), or it was dead-lettered.
            record = wait_for(
                lambda k=kills: (
                    (
                        (r := store.get(poison_id)).status == DEAD_LETTERED
                        or (r.status == SENDING and r.attempts > k)
                    )
                    and r
                ),
                timeout=120,
                interval=0.1,
            )
            if record.status == DEAD_LETTERED:
                break
            os.kill(wait_for(lambda: drill.pool_pid_running(poison_id), timeout=10), signal.SIGKILL)
            kills += 1
        statuses = drill.settle(ids, timeout=120, still=60)
        result = drill.outcome(ids, good + [poison], statuses)
        record = store.get(poison_id)
        letter = DeadLetterStore(drill.redis.client()).get(poison_id)
        result.update(
            {
                "poison": {
                    "status": record.status,
                    "reason": letter.reason if letter else None,
                    "kills": kills,
                    "attempts": record.attempts,
                    "received_by_simulator": drill.count([poison])[poison],
                },
                "seconds": round(time.monotonic() - started, 1),
            }
        )
    result["passed"] = (
        result["lost"] == 0
        and result["delivered"] == len(good)
        and result["dead_lettered"] == 1
        and result["duplicated"] == 0
        and letter is not None
        and letter.reason == "poison"
        and kills == record.attempts
    )
    return result


def main(argv: list[str] | None = None) -> int:
    return finish(run(parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
