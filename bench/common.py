"""What every benchmark shares: the machine's description, processes on loopback, percentiles."""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
from pathlib import Path

import requests

from app.devstack import read_procfile
from tests.stack import ROOT, Process, wait_for

RESULTS_DIR = ROOT / "bench" / "results"


def machine() -> str:
    """Cores, memory and processor, as the results should state them."""
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{mem_kb / 1024 / 1024:.0f} GiB"
    except OSError:
        memory = "unknown memory"
    return f"{os.cpu_count()} cores, {memory}, {cpu}, Python {platform.python_version()}"


def today() -> str:
    return datetime.date.today().isoformat()


def save(name: str, report: dict) -> None:
    """Write a benchmark's report to ``bench/results/<name>.json``, where the summary reads it."""
    import json

    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(report, indent=2))


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank; ``values`` need not be sorted."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def procfile_web(app_target: str, port: int, env: dict[str, str]) -> Process:
    """Serve ``app_target`` with exactly the Procfile's web command (its gunicorn settings)."""
    command = dict(read_procfile(str(ROOT / "Procfile")))["web"]
    command = command.replace('"app.web:create_app()"', shlex.quote(app_target))
    proc = Process("web", ["bash", "-c", f"exec {command}"], {**env, "PORT": str(port)})

    def up() -> bool:
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
            return True
        except requests.RequestException:
            return False

    wait_for(up, timeout=30)
    return proc


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) used so far by process ``pid`` and its descendants alive now."""
    from tests.stack import child_pids

    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            pending += child_pids(current)
        except OSError:
            continue  # it has just exited
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class CpuMeter:
    """CPU used by named processes (and this one, as ``client``) between two readings."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids
        self.start = self._read()

    def _read(self) -> dict[str, float]:
        import time

        return {"client": time.process_time()} | {
            name: cpu_seconds(pid) for name, pid in self.pids.items()
        }

    def per_item_ms(self, items: int) -> dict[str, float]:
        """Milliseconds of CPU per item for each process since the meter was made, and in all."""
        end = self._read()
        used = {name: (end[name] - self.start[name]) * 1000 / items for name in end}
        used["total"] = sum(used.values())
        return {name: round(ms, 3) for name, ms in used.items()}


def run(argv: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> str:
    """Run a command to completion and return its standard output."""
    result = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=timeout, check=True
    )
    return result.stdout


def queue_batches(web_url: str, api_key: str, messages: list[dict]) -> list[str]:
    """Queue ``messages`` through ``POST /v1/messages/batch``, 1,000 a call; returns their ids."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {api_key}"
    ids: list[str] = []
    for i in range(0, len(messages), 1000):
        response = session.post(
            f"{web_url}/v1/messages/batch", json={"messages": messages[i : i + 1000]}, timeout=120
        )
        response.raise_for_status()
        ids += [m["id"] for m in response.json()["messages"]]
    return ids
