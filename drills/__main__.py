"""Run every drill with its defaults, one after the other, and print one summary.

    python -m drills

Each drill starts and stops its own processes; the summary gives, per drill, whether its claims
held, the counts of the table in docs/RELIABILITY.md and how long it took. The exit status is 0
only if every drill passed.
"""

from __future__ import annotations

import json
import sys

from bench.common import machine, today
from drills import (
    graph_faults,
    hosts,
    poison_message,
    redis_failover,
    redis_outage,
    shuffled_statuses,
    worker_kills,
)

DRILLS = {
    "redis_outage": redis_outage,
    "redis_failover": redis_failover,
    "worker_kills": worker_kills,
    "graph_faults": graph_faults,
    "poison_message": poison_message,
    "shuffled_statuses": shuffled_statuses,
    "hosts": hosts,
}

SUMMARY_FIELDS = (
    "passed",
    "offered",
    "accepted",
    "delivered",
    "processed",
    "dead_lettered",
    "dead_letter_reasons",
    "lost",
    "stuck",
    "duplicated",
    "sends_resumed_after_s",
    "poison",
    "seconds",
)
"""What the summary keeps of each drill's result (a drill reports those that apply to it)."""


def main() -> int:
    summary = {}
    for name, drill in DRILLS.items():
        print(f"drill {name}...", file=sys.stderr, flush=True)
        # A drill that needs what this machine lacks (root, for network namespaces) fails, saying so.
        missing = getattr(drill, "missing_privileges", lambda: None)()
        if missing is not None:
            summary[name] = {"passed": False, "missing": missing}
            continue
        result = drill.run(drill.parser().parse_args([]))
        print(json.dumps(result), file=sys.stderr, flush=True)
        summary[name] = {k: result[k] for k in SUMMARY_FIELDS if k in result}
    print(json.dumps({"drills": summary, "machine": machine(), "date": today()}, indent=2))
    return 0 if all(s["passed"] for s in summary.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
