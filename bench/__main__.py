"""Every benchmark, one after another, then a summary of each figure against its baseline and target.

Each benchmark runs as its own process with its defaults and writes its JSON to
``bench/results/``; this reads them back and writes ``bench/results/summary.md``. A benchmark whose
tool is missing is skipped with how to install it; one that fails does not stop the others.

    python -m bench                    # or: make bench
    python -m bench ratelimit memory   # only these
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.common import RESULTS_DIR, machine, today


@dataclass(frozen=True)
class Row:
    """One figure of the summary: its value, the baseline measured in the same run, the target."""

    figure: str
    value: str
    baseline: str
    ratio: str
    target: str
    met: bool | None  # None: no target set for this figure


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


def ingest_rows(r: dict) -> list[Row]:
    rows = []
    for c, gateway in r["ingestion"]["gateway"].items():
        pywa = r["ingestion"]["pywa"][c]
        ratio = gateway["rps"] / pywa["rps"]
        rows.append(
            Row(
                f"webhooks acknowledged/s, {c} connections",
                f"{gateway['rps']:.0f}",
                f"pywa {pywa['rps']:.0f}",
                f"{ratio:.2f}",
                ">= 1.00 of pywa",
                ratio >= 1.0,
            )
        )
    fewest = min(r["ingestion"]["gateway"], key=int)
    gateway, pywa = r["ingestion"]["gateway"][fewest], r["ingestion"]["pywa"][fewest]
    rows.append(
        Row(
            f"acknowledgement p99, {fewest} connections",
            f"{gateway['p99_ms']:.1f} ms",
            f"pywa {pywa['p99_ms']:.1f} ms",
            _ratio(gateway["p99_ms"], pywa["p99_ms"]),
            "< 15 ms",
            gateway["p99_ms"] < 15,
        )
    )
    (slow_gateway,) = r["slow_ai"]["gateway"].values()
    (slow_pywa,) = r["slow_ai"]["pywa"].values()
    rows.append(
        Row(
            "acknowledgement p50 with a 200 ms AI",
            f"{slow_gateway['p50_ms']:.1f} ms",
            f"pywa {slow_pywa['p50_ms']:.1f} ms",
            _ratio(slow_gateway["p50_ms"], slow_pywa["p50_ms"]),
            "< the AI's 200 ms",
            slow_gateway["p50_ms"] < 200,
        )
    )
    return rows


def replies_rows(r: dict) -> list[Row]:
    cap, per = r["capacity"], r["memory"]["per"]
    slowest = min(r["offered"], key=lambda s: s["offered_per_s"])
    rows = [
        Row(
            f"reply latency p99 at {s['offered_per_s']:g} conversations/s offered",
            f"{s['p99_ms']:.0f} ms (p50 {s['p50_ms']:.0f})",
            f"{slowest['offered_per_s']:g}/s offered {slowest['p99_ms']:.0f} ms",
            _ratio(s["p99_ms"], slowest["p99_ms"]),
            "-",
            None,
        )
        for s in r["offered"]
    ]
    rows.append(
        Row(
            f"conversations answered/s, {cap['conversations']:,} at once",
            f"{cap['conversations_per_s']}/s ({cap['tasks_per_conversation_total']:g} tasks, "
            f"{cap['redis_commands_per_conversation']:.0f} Redis commands each)",
            "-",
            "-",
            "-",
            None,
        )
    )
    for owner in ("message", "conversation", "customer", "number"):
        rows.append(
            Row(
                f"Redis bytes per {owner} kept",
                f"{per[owner]['bytes_each']:,} B",
                "-",
                "-",
                "-",
                None,
            )
        )
    return rows


def drain_rows(r: dict) -> list[Row]:
    gateway, ceiling = r["gateway"], r["ceiling"]
    lost = gateway["missing"] + gateway["duplicated"]
    return [
        Row(
            f"send drain, {gateway['messages']:,} messages/s end to end",
            f"{gateway['msgs_per_s']}",
            f"threaded requests {ceiling['msgs_per_s']}",
            f"{r['ratio_to_ceiling']:.2f}",
            ">= 0.80 of the ceiling",
            r["ratio_to_ceiling"] >= 0.8,
        ),
        Row(
            "send drain, absolute",
            f"{gateway['msgs_per_s']}/s",
            "-",
            "-",
            ">= 1,000/s",
            gateway["msgs_per_s"] >= 1000,
        ),
        Row(
            "messages missing or duplicated",
            f"{gateway['missing']} missing, {gateway['duplicated']} duplicated",
            "-",
            "-",
            "0",
            lost == 0,
        ),
    ]


LIMIT_REACHED = 0.95
"""Share of the number's rate limit that counts as reaching it, end to end (the first API call
to the last arrival, so the ramp at each end costs a little)."""


def drain_latency_rows(r: dict) -> list[Row]:
    gateway = r["gateway"]
    return [
        Row(
            f"send drain at {r['latency_ms']:g} ms Graph latency, {gateway['messages']:,} messages",
            f"{gateway['msgs_per_s']}/s",
            f"rate limit {r['rate_limit']:g}/s",
            f"{r['ratio_to_rate_limit']:.2f}",
            f">= {LIMIT_REACHED:.2f} of the limit",
            r["ratio_to_rate_limit"] >= LIMIT_REACHED,
        )
    ]


def priority_rows(r: dict) -> list[Row]:
    loaded, idle = r["high_under_bulk_backlog"], r["high_idle"]
    return [
        Row(
            f"high lane p95 under a {r['bulk_messages']:,}-message bulk backlog",
            f"{loaded['p95_ms']} ms",
            f"nothing queued {idle['p95_ms']} ms",
            f"{r['p95_ratio_loaded_to_idle']:.2f}",
            "< 1 s",
            loaded["p95_ms"] < 1000,
        ),
        Row(
            "bulk lane p95 (a reply's wait in one shared queue)",
            f"{r['bulk_lane_itself']['p95_ms'] / 1000:.1f} s",
            f"high lane {loaded['p95_ms']} ms",
            f"{r['p95_ratio_bulk_lane_to_high']:,}",
            "-",
            None,
        ),
    ]


def ratelimit_rows(r: dict) -> list[Row]:
    limited, unlimited = r["limited"], r["unlimited"]
    limit = limited["rate_limit"]
    return [
        Row(
            f"rate with a {limit:g}/s limit, {r['workers']} workers",
            f"{limited['mean_msgs_per_s']}/s",
            f"limit {limit:g}/s",
            f"{r['ratio_to_limit']:.3f}",
            "0.95 to 1.05",
            0.95 <= r["ratio_to_limit"] <= 1.05,
        ),
        Row(
            "most arrivals in any 1 s window",
            f"{limited['max_in_1s_window']}",
            f"limit + burst {limited['bound_1s_window']}",
            _ratio(limited["max_in_1s_window"], limited["bound_1s_window"]),
            "<= limit + burst",
            limited["max_in_1s_window"] <= limited["bound_1s_window"],
        ),
        Row(
            "seconds above limit + burst",
            f"{limited['seconds_above_limit_plus_burst']}",
            f"of {len(limited['per_second'])} s",
            "-",
            "0",
            limited["seconds_above_limit_plus_burst"] == 0,
        ),
        Row(
            "same workers without the limit (the limiter sets the pace)",
            f"{unlimited['mean_msgs_per_s']}/s",
            f"limit {limit:g}/s",
            f"{r['unlimited_to_limit']:.2f}",
            "> 1.05 of the limit",
            r["unlimited_to_limit"] > 1.05,
        ),
    ]


def memory_rows(r: dict) -> list[Row]:
    busy, idle = r["busy"], r["idle"]
    return [
        Row(
            f"send worker RSS trend over {r['messages']:,} messages",
            f"{busy['slope_mib_per_10k']} MiB/10k msgs (main process "
            f"{busy['main_slope_mib_per_10k']}, pool {busy['children_slope_mib_per_10k']})",
            f"idle worker {idle['slope_mib_per_10k']} MiB/10k msgs",
            "-",
            f"< {r['target_slope_mib_per_10k']} MiB/10k msgs",
            busy["slope_mib_per_10k"] < r["target_slope_mib_per_10k"],
        ),
        Row(
            "send worker RSS, last tenth of the messages",
            f"{busy['last_window_mean_mib']} MiB",
            f"first tenth after warm-up {busy['first_window_mean_mib']} MiB",
            f"{busy['ratio_last_to_first']:.3f}",
            "<= 1.05",
            busy["ratio_last_to_first"] <= 1.05,
        ),
        Row(
            "messages through the batch API",
            f"{r['messages']:,} in {r['seconds']:.0f} s",
            f"wanted {r['messages_wanted']:,}",
            _ratio(r["messages"], r["messages_wanted"]),
            "all",
            not r["stopped_early"],
        ),
        Row(
            "Redis used_memory (records kept 30 days)",
            f"{r['redis_end']['used_memory_mib']} MiB",
            f"start {r['redis_start']['used_memory_mib']} MiB",
            f"{r['redis_bytes_per_message']} B/msg",
            "-",
            None,
        ),
    ]


def inbound_rows(r: dict) -> list[Row]:
    status = r["statuses"]["net_cpu_ms_per_status_webhook"]
    text = r["customer_messages"]["net_cpu_ms_per_message"]
    alone = r["in_process"]["cpu_ms_per_message"]
    return [
        Row(
            "inbound worker CPU per status webhook",
            f"{status['inbound_worker']} ms ({1000 / status['inbound_worker']:.0f}/s per core)",
            f"web {status['web']} ms, Redis {status['redis']} ms",
            "-",
            "-",
            None,
        ),
        Row(
            "inbound worker CPU per customer message (rules responder)",
            f"{text['inbound_worker']} ms ({1000 / text['inbound_worker']:.0f}/s per core)",
            f"web {text['web']} ms, Redis {text['redis']} ms",
            "-",
            "-",
            None,
        ),
        Row(
            "the same work without Celery (the task's function in process), per message",
            f"{alone['handle']} ms, Redis {alone['redis']} ms",
            f"inbound worker {text['inbound_worker']} ms",
            _ratio(alone["handle"], text["inbound_worker"]),
            "-",
            None,
        ),
    ]


def events_rows(r: dict) -> list[Row]:
    us = r["median_us"]
    get = f"one Redis GET {us['redis_get']:.0f} µs"
    return [
        Row(
            "emit, nobody subscribed (per message)",
            f"{us['emit_nobody']:.0f} µs",
            get,
            f"{r['ratio_nobody_to_get']:.2f}",
            "about one Redis read (<= 2)",
            r["ratio_nobody_to_get"] <= 2,
        ),
        Row(
            "emit, one subscriber",
            f"{us['emit_one_subscriber']:.0f} µs",
            get,
            f"{r['ratio_one_subscriber_to_get']:.2f}",
            "-",
            None,
        ),
    ]


@dataclass(frozen=True)
class Benchmark:
    name: str
    rows: Callable[[dict], list[Row]]
    timeout: float
    needs: tuple[tuple[str, str], ...] = ()  # (command or module, how to install it)
    module: str = ""  # the benchmark's module under bench/, when not its name
    args: tuple[str, ...] = ()

    def missing(self) -> list[str]:
        """How to install what this benchmark needs and this machine lacks."""
        lacking = []
        for tool, install in self.needs:
            found = shutil.which(tool) or importlib.util.find_spec(tool)
            if not found:
                lacking.append(f"{tool} is not installed ({install})")
        return lacking


REDIS = ("redis-server", "apt-get install redis-server")
BENCHMARKS = [
    Benchmark(
        "ingest",
        ingest_rows,
        timeout=300,
        needs=(REDIS, ("wrk", "apt-get install wrk"), ("pywa", "pip install -e '.[bench]'")),
    ),
    Benchmark("drain", drain_rows, timeout=600, needs=(REDIS,)),
    # Goal 2's third part: at Meta's usual latency the drain keeps up with the number's limit.
    Benchmark(
        "drain_latency",
        drain_latency_rows,
        timeout=300,
        needs=(REDIS,),
        module="drain",
        args=("--messages", "2400", "--rate", "80", "--latency-ms", "150"),
    ),
    Benchmark("priority", priority_rows, timeout=600, needs=(REDIS,)),
    Benchmark("ratelimit", ratelimit_rows, timeout=300, needs=(REDIS,)),
    Benchmark("memory", memory_rows, timeout=600, needs=(REDIS,)),
    Benchmark("replies", replies_rows, timeout=900, needs=(REDIS,)),
    Benchmark("inbound", inbound_rows, timeout=900, needs=(REDIS,)),
    Benchmark("events", events_rows, timeout=120, needs=(REDIS,)),
]

ISSUE_16_BEFORE = {"redis_bytes_per_message": 2143, "conversations_per_s": 26}
"""The figures issue #16 started from (2026-11-30), for goals whose baseline is not run again."""


def goal_rows(results: dict[str, dict]) -> list[Row]:
    """Issue #16's four goals, each against its baseline; a goal whose benchmark did not run is
    missed."""
    rows: list[Row] = []
    ingest = results.get("ingest", {}).get("with_workers")
    if ingest:
        gateway, pywa = ingest["gateway"]["16"], ingest["pywa"]["16"]
        ratio = gateway["rps"] / pywa["rps"]
        rows.append(
            Row(
                "1. ingestion with the inbound worker running, 16 connections",
                f"{gateway['rps']:.0f}/s, p99 {gateway['p99_ms']:.1f} ms",
                f"pywa {pywa['rps']:.0f}/s, p99 {pywa['p99_ms']:.1f} ms",
                f"{ratio:.2f}",
                ">= 1.10 of pywa, p99 <= pywa's",
                ratio >= 1.1 and gateway["p99_ms"] <= pywa["p99_ms"],
            )
        )
    else:
        rows.append(Row("1. ingestion against pywa", "not run", "-", "-", ">= 1.10", False))
    drain, latency = results.get("drain"), results.get("drain_latency")
    if drain:
        gateway, ceiling = drain["gateway"], drain["ceiling"]
        cpu = gateway.get("cpu_ms_per_msg", {}).get("total")
        at_latency = latency["ratio_to_rate_limit"] if latency else None
        rows.append(
            Row(
                "2. send drain at zero latency; at 150 ms, share of the rate limit",
                f"{gateway['msgs_per_s']}/s, {cpu} ms CPU/msg; at 150 ms "
                + ("not run" if at_latency is None else f"{at_latency:.2f} of the limit"),
                f"threaded requests {ceiling['msgs_per_s']}/s",
                f"{drain['ratio_to_ceiling']:.2f}",
                f">= 0.80 of it, >= 1,000/s, <= 2.0 ms CPU; >= {LIMIT_REACHED:.2f} at 150 ms",
                drain["ratio_to_ceiling"] >= 0.8
                and gateway["msgs_per_s"] >= 1000
                and cpu is not None
                and cpu <= 2.0
                and at_latency is not None
                and at_latency >= LIMIT_REACHED,
            )
        )
    else:
        rows.append(Row("2. send drain", "not run", "-", "-", ">= 0.80 of the ceiling", False))
    replies = results.get("replies")
    before = results.get("memory", {}).get("redis_bytes_per_message")
    if replies:
        # Retained: after its first day a read message's wamid index is gone; the record stays.
        kept = replies["memory"]["per"]["message"]["templates"].get("MESSAGE", 0)
        baseline = before or ISSUE_16_BEFORE["redis_bytes_per_message"]
        rows.append(
            Row(
                "3. Redis bytes per retained message (read, after its first day)",
                f"{kept:,} B",
                f"a record not yet final {baseline:,} B"
                + ("" if before else " (before, not this run)"),
                _ratio(kept, baseline),
                "<= 500 B",
                kept <= 500,
            )
        )
        cap = replies["capacity"]
        p99 = replies.get("p99_ms_at_target_rate")
        rows.append(
            Row(
                "4. reply capacity (rules responder, zero Graph latency)",
                f"{cap['conversations_per_s']}/s; p99 at 50/s offered "
                + ("not measured" if p99 is None else f"{p99:.0f} ms"),
                f"{ISSUE_16_BEFORE['conversations_per_s']}/s before (not this run)",
                _ratio(cap["conversations_per_s"], ISSUE_16_BEFORE["conversations_per_s"]),
                ">= 100/s, p99 < 150 ms at 50/s",
                cap["conversations_per_s"] >= 100 and p99 is not None and p99 < 150,
            )
        )
    else:
        rows.append(Row("3. Redis bytes per message", "not run", "-", "-", "<= 500 B", False))
        rows.append(Row("4. reply capacity", "not run", "-", "-", ">= 100/s", False))
    return rows


def run(bench: Benchmark) -> str | None:
    """Run one benchmark; None if it wrote its results, else why not."""
    lacking = bench.missing()
    if lacking:
        return "skipped: " + "; ".join(lacking)
    result_file = RESULTS_DIR / f"{bench.name}.json"
    result_file.unlink(missing_ok=True)  # never summarise an earlier run's figures
    try:
        code = subprocess.run(
            [sys.executable, "-m", f"bench.{bench.module or bench.name}", *bench.args],
            timeout=bench.timeout,
        ).returncode
    except subprocess.TimeoutExpired:
        return f"failed: no result within {bench.timeout:.0f} s"
    if code != 0 or not result_file.exists():
        return f"failed: exit status {code}"
    return None


def summary(outcomes: dict[str, tuple[str | None, float]]) -> str:
    lines = [
        "# Benchmark summary",
        "",
        f"Machine: {machine()}. Date: {today()}. Command: `python -m bench`.",
        "",
        "| benchmark | figure | value | baseline (same run) | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    notes = []
    results: dict[str, dict] = {}
    for bench in BENCHMARKS:
        if bench.name not in outcomes:
            continue
        problem, seconds = outcomes[bench.name]
        notes.append(f"- `{bench.name}`: {problem or 'ran'} ({seconds:.0f} s)")
        if problem:
            continue
        result = results[bench.name] = json.loads((RESULTS_DIR / f"{bench.name}.json").read_text())
        for row in bench.rows(result):
            met = {True: "met", False: "**missed**", None: "no target"}[row.met]
            lines.append(
                f"| {bench.name} | {row.figure} | {row.value} | {row.baseline} | {row.ratio} "
                f"| {row.target} | {met} |"
            )
    goals = [
        "## Issue #16's goals",
        "",
        "| goal | value | baseline | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in goal_rows(results):
        met = {True: "met", False: "**missed**", None: "no target"}[row.met]
        goals.append(
            f"| {row.figure} | {row.value} | {row.baseline} | {row.ratio} | {row.target} | {met} |"
        )
    total = sum(seconds for _, seconds in outcomes.values())
    return "\n".join([*lines, "", *goals, "", *notes, f"- total: {total / 60:.1f} min", ""])


def main(argv: list[str] | None = None) -> int:
    names = [b.name for b in BENCHMARKS]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help=f"run only these, of: {', '.join(names)}")
    args = parser.parse_args(argv)
    unknown = set(args.only) - set(names)
    if unknown:
        parser.error(f"no benchmark named {', '.join(sorted(unknown))}")
    RESULTS_DIR.mkdir(exist_ok=True)
    outcomes: dict[str, tuple[str | None, float]] = {}
    for bench in BENCHMARKS:
        if args.only and bench.name not in args.only:
            continue
        print(f"== {bench.name}", flush=True)
        started = time.monotonic()
        problem = run(bench)
        outcomes[bench.name] = (problem, time.monotonic() - started)
        if problem:
            print(f"{bench.name}: {problem}", flush=True)
    text = summary(outcomes)
    (RESULTS_DIR / "summary.md").write_text(text)
    print(text)
    return 0 if all(problem is None for problem, _ in outcomes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
