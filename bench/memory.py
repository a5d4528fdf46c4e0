"""Send worker memory over a long campaign: resident memory while 100,000 messages go through.

Starts a Redis of its own, the simulator without status webhooks and without a throughput limit,
the web app with the Procfile's gunicorn settings, and one send worker as the Procfile runs it
(prefork, 4 processes) with the number at 1,000 messages/s. Pool children are not recycled
(``CELERY_MAX_TASKS_PER_CHILD`` above the message count; the shipped setting replaces a child
every 10,000 tasks, which would hide a leak rather than show it). Beside it runs the baseline: an
idle send worker of the same shape on the high lane, which nothing in this run uses.

Messages go through ``POST /v1/messages/batch`` (1,000 a call, bulk priority), never more than
``--backlog`` ahead of the simulator, so the run is a steady flow rather than one large queue.
About every second the resident memory (``VmRSS``) of each worker's main process and pool
children is read with the simulator's count of messages received (``/_sim/stats``). Reported: the
busy worker's memory at the start, after the warm-up (the first tenth of the messages) and at the
end; its least-squares slope after the warm-up in MiB per 10,000 messages; the mean over the
first tenth after the warm-up against the last tenth; the idle worker's over the same samples;
and Redis's ``used_memory`` at start and end (each message's record is kept for 30 days).

    python -m bench.memory --messages 100000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import requests

from bench.common import machine, procfile_web, queue_batches, save, today
from bench.drain import API_KEY, NUMBER, api_message
from tests.stack import (
    Process,
    RedisServer,
    child_pids,
    free_port,
    gateway_env,
    start_simulator,
    start_worker,
    wait_for,
)

SEND_QUEUES = "send.high,send.normal,send.bulk"
BATCH = 1000
TARGET_SLOPE_MIB = 1.0
"""Growth the busy worker may show per 10,000 messages: about 100 bytes a message."""


def rss_kib(pid: int) -> int:
    """Resident memory of process ``pid`` in KiB (0 once it has gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def worker_rss(proc: Process) -> dict:
    """A worker's main process and each pool child (by pid), in KiB."""
    return {
        "main": rss_kib(proc.pid),
        "children": {str(pid): rss_kib(pid) for pid in child_pids(proc.pid)},
    }


def total_mib(sample: dict) -> float:
    return (sample["main"] + sum(sample["children"].values())) / 1024


class Sampler:
    """Reads both workers' memory and the simulator's count every ``interval`` seconds."""

    def __init__(self, busy: Process, idle: Process, sim_url: str, interval: float):
        self.busy, self.idle, self.sim_url, self.interval = busy, idle, sim_url, interval
        self.samples: list[dict] = []
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sent(self) -> int:
        # "requests" counts every send, past the simulator's 100,000 kept records.
        return requests.get(f"{self.sim_url}/_sim/stats", timeout=30).json()["requests"]

    def sample(self) -> dict:
        return {
            "t": round(time.monotonic() - self.started, 1),
            "messages": self.sent(),
            "busy": worker_rss(self.busy),
            "idle": worker_rss(self.idle),
        }

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append(self.sample())

    def start(self) -> None:
        self.samples.append(self.sample())
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(self.sample())


def per_10k(x: list[int], y: list[float]) -> float:
    """Least-squares slope of ``y`` (MiB) against ``x`` (messages), per 10,000 messages."""
    if len(set(x)) < 2:
        return float("nan")
    return round(statistics.linear_regression(x, y).slope * 10_000, 3)


def trend(samples: list[dict], worker: str, warmup: int, window: int, last: int) -> dict:
    """One worker's memory over the samples, against the messages sent when each was taken."""
    after = [s for s in samples if s["messages"] >= warmup]
    x = [s["messages"] for s in after]
    y = [total_mib(s[worker]) for s in after]
    first = [v for s, v in zip(after, y, strict=True) if s["messages"] < warmup + window]
    final = [v for s, v in zip(after, y, strict=True) if s["messages"] > last - window]
    main_y = [s[worker]["main"] / 1024 for s in after]
    children_y = [v - m for v, m in zip(y, main_y, strict=True)]
    children = samples[-1][worker]["children"]
    return {
        "start_mib": round(total_mib(samples[0][worker]), 1),
        "after_warmup_mib": round(y[0], 1),
        "end_mib": round(y[-1], 1),
        "main_start_mib": round(samples[0][worker]["main"] / 1024, 1),
        "main_end_mib": round(samples[-1][worker]["main"] / 1024, 1),
        "children_end_mib": [round(v / 1024, 1) for v in children.values()],
        "slope_mib_per_10k": per_10k(x, y),
        "main_slope_mib_per_10k": per_10k(x, main_y),
        "children_slope_mib_per_10k": per_10k(x, children_y),
        "first_window_mean_mib": round(statistics.fmean(first), 1),
        "last_window_mean_mib": round(statistics.fmean(final), 1),
        "ratio_last_to_first": round(statistics.fmean(final) / statistics.fmean(first), 3),
    }


def redis_memory(client) -> dict:
    return {
        "used_memory_mib": round(client.info("memory")["used_memory"] / 2**20, 1),
        "keys": client.dbsize(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=4, help="send pool processes")
    parser.add_argument("--backlog", type=int, default=3000, help="most messages queued ahead")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=240,
        help="stop queueing after this long, even short of --messages (keeps `make bench` bounded)",
    )
    args = parser.parse_args(argv)

    redis_server = RedisServer(appendonly=True, fsync="everysec").start()
    sim_port, web_port = free_port(), free_port()
    env = gateway_env(
        redis_server.url,
        f"http://127.0.0.1:{sim_port}",
        GATEWAY_API_KEYS=API_KEY,
        SEND_RATE_LIMITS=f"{NUMBER}=1000",
        CELERY_MAX_TASKS_PER_CHILD=str(10 * args.messages),
    )
    report: dict = {
        "machine": machine(),
        "date": today(),
        "messages_wanted": args.messages,
        "send_concurrency": args.concurrency,
        "backlog": args.backlog,
    }
    processes = []
    redis_client = redis_server.client()
    try:
        simulator, sim_url = start_simulator(
            env, sim_port, webhook_url=None, extra_args=["--throughput", "0"]
        )
        processes.append(simulator)
        processes.append(procfile_web("app.web:create_app()", web_port, env))
        web_url = f"http://127.0.0.1:{web_port}"
        busy = start_worker(env, queues=SEND_QUEUES, concurrency=args.concurrency, name="send")
        processes.append(busy)
        # The baseline listens on the high lane, which nothing in this run uses.
        idle = start_worker(env, queues="send.high", concurrency=args.concurrency, name="idle")
        processes.append(idle)
        report["redis_start"] = redis_memory(redis_client)

        sampler = Sampler(busy, idle, sim_url, args.interval)
        sampler.start()
        started = time.monotonic()
        posted = 0
        try:
            while posted < args.messages and time.monotonic() - started < args.max_seconds:
                if posted - sampler.sent() >= args.backlog:
                    time.sleep(0.2)
                    continue
                count = min(BATCH, args.messages - posted)
                batch = [api_message(f"57305{posted + i:07d}", "bulk") for i in range(count)]
                queue_batches(web_url, API_KEY, batch)
                posted += count
                if posted % 10_000 == 0:
                    print(f"  {posted} queued, {sampler.sent()} sent", flush=True)
            wait_for(lambda: sampler.sent() >= posted, timeout=args.backlog / 10 + 60, interval=0.5)
            elapsed = time.monotonic() - started
        finally:
            sampler.stop()
        report["redis_end"] = redis_memory(redis_client)
    finally:
        for proc in reversed(processes):
            proc.stop()
        redis_server.close()

    sent = sampler.samples[-1]["messages"]
    warmup = window = max(1, sent // 10)
    report.update(
        messages=sent,
        stopped_early=sent < args.messages,
        seconds=round(elapsed, 1),
        msgs_per_s=round(sent / elapsed, 1),
        warmup_messages=warmup,
        window_messages=window,
        busy=trend(sampler.samples, "busy", warmup, window, sent),
        idle=trend(sampler.samples, "idle", warmup, window, sent),
        target_slope_mib_per_10k=TARGET_SLOPE_MIB,
    )
    added = report["redis_end"]["used_memory_mib"] - report["redis_start"]["used_memory_mib"]
    report["redis_bytes_per_message"] = round(added * 2**20 / max(1, sent))
    report["samples"] = sampler.samples
    busy_, idle_ = report["busy"], report["idle"]
    print(
        f"{sent} messages in {elapsed:.0f} s ({report['msgs_per_s']}/s); busy worker "
        f"{busy_['start_mib']} -> {busy_['after_warmup_mib']} -> {busy_['end_mib']} MiB, "
        f"slope {busy_['slope_mib_per_10k']} MiB/10k messages (idle worker "
        f"{idle_['slope_mib_per_10k']}), last/first tenth {busy_['ratio_last_to_first']}; "
        f"Redis {report['redis_start']['used_memory_mib']} -> "
        f"{report['redis_end']['used_memory_mib']} MiB",
        flush=True,
    )
    save("memory", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
