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
    Benchmark("priority", priority_rows, timeout=600, needs=(REDIS,)),
    Benchmark("ratelimit", ratelimit_rows, timeout=300, needs=(REDIS,)),
    Benchmark("memory", memory_rows, timeout=600, needs=(REDIS,)),
    Benchmark("events", events_rows, timeout=120, needs=(REDIS,)),
]


def run(bench: Benchmark) -> str | None:
    """Run one benchmark; None if it wrote its results, else why not."""
    lacking = bench.missing()
    if lacking:
        return "skipped: " + "; ".join(lacking)
    result_file = RESULTS_DIR / f"{bench.name}.json"
    result_file.unlink(missing_ok=True)  # never summarise an earlier run's figures
    try:
        code = subprocess.run(
            [sys.executable, "-m", f"bench.{bench.name}"], timeout=bench.timeout
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
    for bench in BENCHMARKS:
        if bench.name not in outcomes:
            continue
        problem, seconds = outcomes[bench.name]
        notes.append(f"- `{bench.name}`: {problem or 'ran'} ({seconds:.0f} s)")
        if problem:
            continue
        result = json.loads((RESULTS_DIR / f"{bench.name}.json").read_text())
        for row in bench.rows(result):
            met = {True: "met", False: "**missed**", None: "no target"}[row.met]
            lines.append(
                f"| {bench.name} | {row.figure} | {row.value} | {row.baseline} | {row.ratio} "
                f"| {row.target} | {met} |"
            )
    total = sum(seconds for _, seconds in outcomes.values())
    return "\n".join([*lines, "", *notes, f"- total: {total / 60:.1f} min", ""])


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
