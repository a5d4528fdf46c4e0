"""What emitting an event costs the pipeline that emits it, against one Redis read.

The inbound and send steps emit an event at every message and status. With nobody subscribed
that must cost about one Redis round trip; with a subscriber, the sequence number and one
publish to the broker. Each variant runs in interleaved rounds against a Redis of its own on
127.0.0.1, so a busy machine slows them alike; the figure is the median per call.

    python -m bench.events            # about 10 s
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

from bench.common import machine, save, today
from tests.stack import RedisServer

ROUNDS = 7
CALLS = 1000


def per_call_us(fn: Callable[[int], object], calls: int = CALLS) -> float:
    started = time.perf_counter()
    for i in range(calls):
        fn(i)
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    server = RedisServer(appendonly=False).start()
    try:
        os.environ["REDIS_URL"] = server.url
        from app.config import get_settings

        get_settings.cache_clear()
        import workers  # noqa: F401 - the one Celery app, publishing to this Redis
        from app.credentials import generate_key, load_cipher
        from app.events.delivery import emit
        from app.events.subscriptions import (
            MESSAGE_RECEIVED,
            MESSAGE_STATUS,
            SubscriptionStore,
        )

        r = server.client()
        data = {"message_id": "wamid.x", "text": "Hola"}
        store = SubscriptionStore(r, load_cipher(generate_key()))
        variants: dict[str, Callable[[int], object]] = {
            "redis_get": lambda i: r.get("wa:bench:missing"),
            "emit_nobody": lambda i: emit(r, MESSAGE_RECEIVED, data, conversation_id=f"c{i % 50}"),
        }
        samples: dict[str, list[float]] = {name: [] for name in variants}
        samples["emit_other_type"] = []
        samples["emit_one_subscriber"] = []
        for _ in range(ROUNDS):
            for name, fn in variants.items():
                samples[name].append(per_call_us(fn))
            other, _ = store.create("https://a.example.com/", [MESSAGE_STATUS])
            samples["emit_other_type"].append(per_call_us(variants["emit_nobody"]))
            mine, _ = store.create("https://b.example.com/", [MESSAGE_RECEIVED])
            samples["emit_one_subscriber"].append(per_call_us(variants["emit_nobody"]))
            store.delete(other.id)
            store.delete(mine.id)
            r.delete("events")  # the queued deliveries: nobody consumes them here
        medians = {name: round(statistics.median(v), 1) for name, v in samples.items()}
        report = {
            "machine": machine(),
            "date": today(),
            "rounds": ROUNDS,
            "calls_per_round": CALLS,
            "median_us": medians,
            "ratio_nobody_to_get": round(medians["emit_nobody"] / medians["redis_get"], 2),
            "ratio_other_type_to_get": round(medians["emit_other_type"] / medians["redis_get"], 2),
            "ratio_one_subscriber_to_get": round(
                medians["emit_one_subscriber"] / medians["redis_get"], 2
            ),
        }
        save("events", report)
        print(report)
    finally:
        server.close()


if __name__ == "__main__":
    main()
