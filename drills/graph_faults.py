"""Drill: the simulator fails 30% of requests in mixed ways while 10,000 messages flow.

Failures are transient 5xx, throttling with ``Retry-After``, timeouts, and the error codes 131000
(transient), 131026 (not on WhatsApp) and 131047 (window closed), as in ``MIXED_FAULTS``. Every
message must end ``read`` or dead-lettered with the reason its error code calls for, none may be
lost or sent twice, and retries must not become a storm: the requests the simulator received per
message stay bounded.

    python -m drills.graph_faults --messages 10000
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from typing import Any

from app.delivery import dead_letters as dl
from app.delivery.dead_letters import DeadLetterStore
from app.delivery.messages import DEAD_LETTERED, MessageStore
from app.delivery.retry import MAX_ATTEMPTS, MAX_THROTTLED
from drills.harness import (
    EXPECTED_REASONS,
    FAST_SENDS,
    MIXED_FAULTS,
    drill_stack,
    finish,
    recipients,
)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="the send worker's processes (a timed-out send holds one for the 1 s read timeout)",
    )
    parser.add_argument(
        "--max-requests-per-message",
        type=float,
        default=2.0,
        help="the bound on requests at the simulator per message; above it is a retry storm",
    )
    return parser


def right_reason(reason: str, code: int | None, failures: int, throttles: int) -> bool:
    """Whether a dead letter's reason is the one its last error calls for."""
    if reason == dl.RETRIES_EXHAUSTED:
        return failures >= MAX_ATTEMPTS
    if reason == dl.THROTTLED:
        return throttles >= MAX_THROTTLED
    return EXPECTED_REASONS.get(code) == reason


def run(args: argparse.Namespace) -> dict[str, Any]:
    to = recipients(12, args.messages)
    started = time.monotonic()
    with drill_stack(simulator_args=["--throughput", "0"], **FAST_SENDS) as drill:
        drill.faults(**MIXED_FAULTS)
        drill.worker(concurrency=args.concurrency)
        ids = drill.submit(to)
        statuses = drill.settle(ids, timeout=600, still=60)
        seconds = time.monotonic() - started
        result = drill.outcome(ids, to, statuses)
        store, letters = MessageStore(drill.redis.client()), DeadLetterStore(drill.redis.client())
        counts = drill.count(to)
        wrong, codes, sent_anyway = [], collections.Counter(), 0
        for message_id in (i for i, s in statuses.items() if s == DEAD_LETTERED):
            record, letter = store.get(message_id), letters.get(message_id)
            codes[f"{letter.code} {letter.reason}"] += 1
            if not right_reason(letter.reason, letter.code, record.failures, record.throttles):
                wrong.append({"id": message_id, "reason": letter.reason, "code": letter.code})
            sent_anyway += counts[record.to] > 0  # Meta refused it: it must never have gone
        record = drill.simulator_record()
        per_message = record["requests"] / max(1, len(ids))
        result.update(
            {
                "dead_letters_by_code": dict(codes),
                "wrong_reasons": len(wrong),
                "wrong_reason_examples": wrong[:3],
                "dead_lettered_yet_received": sent_anyway,
                "requests_at_simulator": record["requests"],
                "requests_per_message": round(per_message, 3),
                "refused_by_code": record["refused"],
                # A hang the client gave up on is noted as code 2 (or not at all, if the
                # simulator cannot tell that its client hung up).
                "timed_out": record["refused"].get("2", 0)
                + record["requests"]
                - len(record["messages"])
                - sum(record["refused"].values()),
                "fault_rate": round(
                    sum(v for k, v in MIXED_FAULTS.items() if k.endswith("_rate"))
                    + sum(MIXED_FAULTS["error_codes"].values()),
                    2,
                ),
                "seconds": round(seconds, 1),
            }
        )
    result["passed"] = (
        result["lost"] == 0
        and result["duplicated"] == 0
        and not wrong
        and sent_anyway == 0
        and per_message <= args.max_requests_per_message
    )
    return result


def main(argv: list[str] | None = None) -> int:
    return finish(run(parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
