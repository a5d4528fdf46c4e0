"""What ``REDIS_MIN_REPLICAS=1`` costs on webhook ingestion: the same gateway, the same master and
replica, with and without ``WAIT``, measured in alternating rounds so both see the same machine.

A webhook is then answered 200 only after one more round trip (the replication mark and ``WAIT``
in one pipeline) that lasts until the replica confirms the write.

    python -m bench.replication --duration 5 --connections 16 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile

from bench.common import machine, save, today
from bench.ingest import measure, write_requests
from tests.stack import RedisServer, gateway_env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--connections", default="16")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of without/with")
    parser.add_argument("--requests", type=int, default=60_000, help="unique signed webhooks")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    connections = [int(c) for c in args.connections.split(",")]
    workdir = tempfile.mkdtemp(prefix="wa-bench-")
    requests_file = os.path.join(workdir, "requests.txt")
    secret = gateway_env("redis://x", "http://x")["WHATSAPP_WEBHOOK_SECRET"]
    write_requests(requests_file, args.requests, secret)
    master = RedisServer(appendonly=True, fsync="everysec").start()
    replica = RedisServer(
        appendonly=True, fsync="everysec", extra=["--replicaof", "127.0.0.1", str(master.port)]
    ).start()
    modes = {"no_wait": {"REDIS_MIN_REPLICAS": "0"}, "wait_1": {"REDIS_MIN_REPLICAS": "1"}}
    runs: dict = {mode: [] for mode in modes}
    try:
        for _ in range(args.rounds):
            for mode, env in modes.items():
                print(f"{mode}:", flush=True)
                runs[mode].append(
                    measure("gateway", connections, args.duration, requests_file, master, env)
                )
    finally:
        replica.close()
        master.close()
        shutil.rmtree(workdir, ignore_errors=True)
    report: dict = {"machine": machine(), "date": today(), "duration_s": args.duration, "runs": runs}
    for c in connections:
        rps = {m: statistics.median(r[c]["rps"] for r in runs[m]) for m in modes}
        p99 = {m: statistics.median(r[c]["p99_ms"] for r in runs[m]) for m in modes}
        report[f"c{c}"] = {"rps": rps, "p99_ms": p99, "ratio": rps["wait_1"] / rps["no_wait"]}
        print(
            f"c={c}: {rps['no_wait']:.0f} -> {rps['wait_1']:.0f} req/s "
            f"(ratio {rps['wait_1'] / rps['no_wait']:.2f}), "
            f"p99 {p99['no_wait']:.1f} -> {p99['wait_1']:.1f} ms",
            flush=True,
        )
    save("replication", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
