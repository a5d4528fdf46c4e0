"""Drill: status webhooks shuffled and duplicated while 5,000 messages flow.

The simulator delivers each message's ``sent``, ``delivered`` and ``read`` webhooks in a random
order, each one on its own, and delivers some of them twice; for some messages it answers the
send only after the statuses have gone out, as Meta's webhooks can overtake its HTTP answer.
Every message must end ``read``: none stuck at ``sent`` or ``delivered`` because a late ``sent``
undid a ``read``, because a repeated webhook counted twice, or because a status arrived before
the send worker had recorded the message's ``wamid``.

    python -m drills.shuffled_statuses --messages 5000 --duplicate-rate 0.5 --late-answer-rate 0.1
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from typing import Any

from app.delivery.messages import MessageStore
from drills.harness import drill_stack, finish, recipients


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument(
        "--duplicate-rate", type=float, default=0.5, help="share of status webhooks sent twice"
    )
    parser.add_argument(
        "--status-delay",
        type=float,
        default=0.02,
        help="seconds between a message's status webhooks (the first one comes after this)",
    )
    parser.add_argument(
        "--late-answer-rate",
        type=float,
        default=0.1,
        help="share of sends answered 0.3 s after their status webhooks went out",
    )
    parser.add_argument(
        "--rate", type=float, default=40.0, help="the send rate limit, messages per second"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="the send worker's processes")
    return parser


def run(args: argparse.Namespace) -> dict[str, Any]:
    to = recipients(15, args.messages)
    started = time.monotonic()
    # Sends paced so that the inbound side keeps up with four or five webhooks a message, as it
    # does in production: then a status can overtake a late answer, as Meta's do.
    with drill_stack(status_delay=args.status_delay, SEND_RATE_LIMIT=str(args.rate)) as drill:
        drill.faults(
            status_order="shuffled",
            duplicate_status_rate=args.duplicate_rate,
            late_answer_rate=args.late_answer_rate,
            late_answer_seconds=0.3,
        )
        drill.worker(concurrency=args.concurrency)
        ids = drill.submit(to)
        # Wait for the simulator to have sent every webhook, then for the gateway to apply them.
        statuses = drill.settle(ids, timeout=600, still=30)
        seconds = time.monotonic() - started
        result = drill.outcome(ids, to, statuses)
        counts = drill.count(to)
        # A message stuck at sent or delivered did go; lost is what Meta never received.
        result["stuck"] = result.pop("not_final")
        result["lost"] = sum(1 for t in to if counts[t] == 0)
        store = MessageStore(drill.redis.client())
        early = out_of_order = 0
        for message_id in ids:
            history = store.get(message_id).history
            early += any(h.get("arrived_before_wamid") for h in history)
            out_of_order += any(h.get("ignored") for h in history)
        attempts = drill.webhook_attempts()
        delivered = collections.Counter(
            a["payload"]["entry"][0]["changes"][0]["value"]["statuses"][0]["id"]
            for a in attempts
            if a["status"] == 200
        )
        result.update(
            {
                "status_webhooks_accepted": sum(delivered.values()),
                "status_webhooks_repeated": sum(n - 3 for n in delivered.values() if n > 3),
                "messages_with_a_status_ignored_as_older": out_of_order,
                "messages_with_a_status_before_their_wamid": early,
                "seconds": round(seconds, 1),
            }
        )
    result["passed"] = result["delivered"] == len(ids) and result["duplicated"] == 0
    return result


def main(argv: list[str] | None = None) -> int:
    return finish(run(parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
