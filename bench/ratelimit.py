"""One number's rate limit shared by two send workers, as Meta sees it: arrivals per second.

Starts a Redis of its own, the simulator without status webhooks and without a throughput limit
of its own (so it records every message instead of refusing any), and the web app with the
Procfile's gunicorn settings. Two separate send workers (``celery worker`` processes, as two hosts
would run them) share the number's limit through Redis.

1. unlimited (baseline): the same messages and the same two workers with the number at Meta's
   highest tier (1,000/s), so the workers' own speed is known;
2. limited: the number at ``--rate`` (80/s), with enough messages queued to keep the bucket empty
   for ``--seconds`` (30 s).

Before each run the messages are queued through the batch API with the workers stopped; then both
workers start together. At the simulator: arrivals in each whole second (the first second, while
the workers start, and the last, partial one are left out of the mean), the most arrivals in any
1-second window (sliding over every arrival) against the bound ``rate + burst``, and the seconds
above the limit and above limit plus burst. The workers' logs give how many messages each sent
and how often the limiter deferred one.

    python -m bench.ratelimit --rate 80 --seconds 30
"""

from __future__ import annotations

import argparse
import bisect
import json
import re
import sys
import threading

from app.delivery.ratelimit import BURST_SECONDS, MAX_SENDER_RATE, Bucket, SendRateLimiter
from bench.common import machine, procfile_web, queue_batches, save, today
from bench.drain import API_KEY, NUMBER, Simulator, api_message, recipients
from tests.stack import (
    Process,
    RedisServer,
    free_port,
    gateway_env,
    start_simulator,
    start_worker,
    wait_for,
)

SEND_QUEUES = "send.high,send.normal,send.bulk"
SENT_LINE = re.compile(r"accepted by Meta as ")
DEFERRED_IN_BATCH = re.compile(
    r"outbound\.send_batch\[[^\]]+\] succeeded in [\d.]+s: \{[^}]*'rate_limited': (\d+)"
)
DEFERRED_ALONE = re.compile(r"outbound\.send_message\[[^\]]+\] retry: Retry in")


def deferrals(log: str) -> int:
    """Sends the limiter refused, from a send worker's log: in batches and as tasks of one."""
    in_batches = sum(int(n) for n in DEFERRED_IN_BATCH.findall(log))
    return in_batches + len(DEFERRED_ALONE.findall(log))


def start_send_workers(env: dict[str, str], count: int, concurrency: int) -> list[Process]:
    """``count`` send workers started at the same time, each a ``celery worker`` of its own."""
    workers: list[Process | None] = [None] * count
    errors: list[Exception] = []

    def start(i: int) -> None:
        try:
            workers[i] = start_worker(
                env, queues=SEND_QUEUES, concurrency=concurrency, name=f"send{i + 1}"
            )
        except Exception as exc:  # noqa: BLE001 - reported below, after the others are stopped
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        for worker in workers:
            if worker is not None:
                worker.stop()
        raise errors[0]
    return [w for w in workers if w is not None]


def pacing(times: list[float], limit: float, burst: int) -> dict:
    """Arrivals per second and the busiest 1-second window of the sorted receipt ``times``."""
    start = times[0]
    per_second = [0] * (int(times[-1] - start) + 1)
    for t in times:
        per_second[int(t - start)] += 1
    # The first second has the workers starting and the bucket's burst; the last is partial.
    saturated = per_second[1:-1] or per_second
    busiest = max(bisect.bisect_left(times, t + 1.0, lo=i) - i for i, t in enumerate(times))
    return {
        "messages": len(times),
        "seconds": round(times[-1] - start, 2),
        "saturated_seconds": len(saturated),
        "mean_msgs_per_s": round(sum(saturated) / len(saturated), 1),
        "max_in_1s_window": busiest,
        "bound_1s_window": round(limit + burst),
        "seconds_above_limit": sum(1 for c in per_second if c > limit),
        "seconds_above_limit_plus_burst": sum(1 for c in per_second if c > limit + burst),
        "per_second": per_second,
    }


def run(
    sim: Simulator,
    web_url: str,
    base_env: dict[str, str],
    bucket: Bucket,
    tos: list[str],
    priority: str,
    workers: int,
    concurrency: int,
) -> dict:
    """Queue one message to each of ``tos``, then let ``workers`` send them within ``bucket``."""
    sim.clear()
    queue_batches(web_url, API_KEY, [api_message(to, priority) for to in tos])
    env = {**base_env, "SEND_RATE_LIMITS": f"{NUMBER}={bucket.rate:g}"}
    processes = start_send_workers(env, workers, concurrency)
    try:
        wait_for(lambda: sim.count() >= len(tos), timeout=len(tos) / 20 + 60, interval=0.5)
    finally:
        for proc in processes:
            proc.stop()
    wanted = set(tos)
    received = [m for m in sim.received() if m["body"]["to"] in wanted]
    result = pacing(sorted(m["at"] for m in received), bucket.rate, bucket.burst)
    result["rate_limit"] = bucket.rate
    result["burst"] = bucket.burst
    result["lane_burst"] = bucket.capacity(priority)
    result["duplicated"] = len(received) - len({m["body"]["to"] for m in received})
    result["sent_by_worker"] = [len(SENT_LINE.findall(proc.output())) for proc in processes]
    # Few deferrals mean the limiter seldom refused: the workers, not the limit, set the pace.
    result["deferred_by_worker"] = [deferrals(proc.output()) for proc in processes]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=80, help="the number's limit, messages/s")
    parser.add_argument("--seconds", type=int, default=30, help="seconds the limit is saturated")
    parser.add_argument("--workers", type=int, default=2, help="separate send worker processes")
    parser.add_argument("--concurrency", type=int, default=2, help="pool processes per worker")
    parser.add_argument("--priority", default="bulk", choices=["normal", "bulk"])
    args = parser.parse_args(argv)
    # Five seconds more than the limit needs, so the bucket is still empty at the end.
    count = round(args.rate * (args.seconds + 5))

    redis_server = RedisServer(appendonly=True, fsync="everysec").start()
    sim_port, web_port = free_port(), free_port()
    env = gateway_env(redis_server.url, f"http://127.0.0.1:{sim_port}", GATEWAY_API_KEYS=API_KEY)
    processes = []
    report: dict = {
        "machine": machine(),
        "date": today(),
        "workers": args.workers,
        "concurrency_per_worker": args.concurrency,
        "priority": args.priority,
        "burst_seconds": BURST_SECONDS,
    }
    try:
        simulator, sim_url = start_simulator(
            env, sim_port, webhook_url=None, extra_args=["--throughput", "0"]
        )
        processes.append(simulator)
        processes.append(procfile_web("app.web:create_app()", web_port, env))
        sim, web_url = Simulator(sim_url), f"http://127.0.0.1:{web_port}"
        for label, rate, prefix in (("unlimited", MAX_SENDER_RATE, 3), ("limited", args.rate, 4)):
            print(f"{label} ({rate:g}/s, {count} messages, {args.workers} workers):", flush=True)
            limiter = SendRateLimiter(redis_server.client(), rates={NUMBER: rate})
            report[label] = run(
                sim,
                web_url,
                env,
                limiter.sender_bucket(NUMBER),
                recipients(prefix, count),
                args.priority,
                args.workers,
                args.concurrency,
            )
            shown = {k: v for k, v in report[label].items() if k != "per_second"}
            print(f"  {json.dumps(shown)}", flush=True)
    finally:
        for proc in reversed(processes):
            proc.stop()
        redis_server.close()
    limited, unlimited = report["limited"], report["unlimited"]
    report["ratio_to_limit"] = round(limited["mean_msgs_per_s"] / args.rate, 3)
    report["unlimited_to_limit"] = round(unlimited["mean_msgs_per_s"] / args.rate, 2)
    print(
        f"limited {limited['mean_msgs_per_s']}/s = {report['ratio_to_limit']:.3f} of the limit; "
        f"busiest 1 s window {limited['max_in_1s_window']} (bound {limited['bound_1s_window']}); "
        f"unlimited {unlimited['mean_msgs_per_s']}/s = {report['unlimited_to_limit']:.2f}x "
        "the limit",
        flush=True,
    )
    save("ratelimit", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
