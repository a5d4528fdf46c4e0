"""Drill: the gateway on two hosts, each in a network namespace of its own; one host frozen.

Three network namespaces on this machine (``ip netns``, so it needs root and iproute2), joined by
veth pairs to a bridge in the first: Redis runs in that one, and each of the two hosts runs the
web app, a send worker, an inbound worker and beat. The simulator plays Meta from this machine's
own namespace, reachable by both hosts; status webhooks go to the host that stays up.

1. **Rate limit across hosts.** One number's limit (``--rate``, the default 80/s), enough messages
   queued through both hosts' APIs to keep it saturated for ``--seconds``; both send workers
   share the number's bucket in Redis. At the simulator: the mean arrivals per second must stay
   within 5% of the limit (never above 1.05 times it), no 1-second window may hold more than the
   limit plus its burst, and both hosts must have sent.
2. **A host frozen.** More messages through both APIs, then the host whose beat holds beat's lock
   is frozen for ``--freeze`` seconds: every process of its namespace gets SIGSTOP
   (``--how sigstop``), or its link to the bridge goes down (``--how netcut``). The tasks it had
   taken come back to the other host after the visibility timeout (10 s here), and the other
   host's beat takes over within beat's lock TTL. Every accepted message must end ``read`` or
   dead-lettered: lost = 0.
3. **Beat once across hosts.** Both hosts' beats run throughout; the send sweep they schedule
   (every second here) must never be sent by both: one beat's sends all come before the
   other's, and no two sends of it are closer than half its interval.

    python -m drills.hosts --freeze 60 --seconds 30
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app import keys
from app.delivery.ratelimit import BURST_SECONDS
from bench.ratelimit import SENT_LINE, pacing
from drills.harness import DRILL_ENV, SEND_QUEUES, VISIBILITY_TIMEOUT, Drill, finish, recipients
from tests.stack import (
    Process,
    RedisServer,
    free_port,
    gateway_env,
    start_beat,
    start_simulator,
    start_web,
    start_worker,
    wait_for,
)
from workers.beat import RENEW_INTERVAL

RATE_TOLERANCE = 0.05
"""How far above the number's limit the mean rate across hosts may go (the issue's 5%)."""

SWEEP_TASK = "outbound.recover_lost_sends"
"""The periodic task whose sends show whether beat ran once: the most frequent one."""


def missing_privileges() -> str | None:
    """Why this machine cannot run the drill (it needs root and ``ip``), or None if it can."""
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    return None


def ip(*args: str, netns: str | None = None) -> None:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    subprocess.run([*prefix, "ip", *args], check=True, capture_output=True, timeout=30)


@dataclass
class Host:
    """One host: a namespace, its address, and the gateway's processes in it."""

    netns: str
    address: str
    port: str
    """Its interface on the bridge, in the switch's namespace: cut it to cut the host off."""
    processes: list[Process] = field(default_factory=list)
    web_url: str = ""

    def pids(self) -> list[int]:
        """Every process of the namespace (gunicorn's and Celery's children included)."""
        found = subprocess.run(
            ["ip", "netns", "pids", self.netns], capture_output=True, text=True, timeout=30
        )
        return [int(pid) for pid in found.stdout.split()]

    def signal_all(self, sig: int) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


@dataclass
class Network:
    """The namespaces: ``switch`` (the bridge, and Redis) and two hosts; this machine's own
    namespace is on the bridge too, at ``root_address``."""

    switch: str
    switch_address: str
    root_address: str
    hosts: list[Host]


@contextmanager
def network() -> Iterator[Network]:
    """Create the namespaces, the bridge and the veth pairs; delete them all afterwards (the
    processes in them must be stopped first)."""
    tag = f"{random.randrange(16**4):04x}"
    subnet = f"10.{random.randrange(200, 250)}.{random.randrange(256)}"
    switch = f"wa{tag}-switch"
    created: list[str] = []
    root_link = f"wa{tag}r"
    try:
        ip("netns", "add", switch)
        created.append(switch)
        ip("link", "set", "lo", "up", netns=switch)
        ip("link", "add", "br0", "type", "bridge", netns=switch)
        ip("addr", "add", f"{subnet}.2/24", "dev", "br0", netns=switch)
        ip("link", "set", "br0", "up", netns=switch)
        # This machine's end: the simulator and the drill itself reach everything from here.
        ip("link", "add", root_link, "type", "veth", "peer", "name", f"wa{tag}p0")
        ip("link", "set", f"wa{tag}p0", "netns", switch)
        ip("link", "set", f"wa{tag}p0", "master", "br0", "up", netns=switch)
        ip("addr", "add", f"{subnet}.1/24", "dev", root_link)
        ip("link", "set", root_link, "up")
        hosts = []
        for index in (1, 2):
            netns, link, port = f"wa{tag}-host{index}", f"wa{tag}h{index}", f"wa{tag}p{index}"
            ip("netns", "add", netns)
            created.append(netns)
            ip("link", "set", "lo", "up", netns=netns)
            ip("link", "add", link, "type", "veth", "peer", "name", port)
            ip("link", "set", link, "netns", netns)
            ip("link", "set", port, "netns", switch)
            ip("link", "set", port, "master", "br0", "up", netns=switch)
            ip("addr", "add", f"{subnet}.{2 + index}/24", "dev", link, netns=netns)
            ip("link", "set", link, "up", netns=netns)
            hosts.append(Host(netns, f"{subnet}.{2 + index}", port))
        yield Network(switch, f"{subnet}.2", f"{subnet}.1", hosts)
    finally:
        # Deleting a namespace deletes its veth ends, and with them their peers.
        for netns in reversed(created):
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", root_link], capture_output=True, timeout=30)


def start_host(host: Host, env: dict[str, str], web_port: int, send_concurrency: int) -> None:
    """The web app, a send worker and an inbound worker in ``host``'s namespace (beat apart)."""
    web, host.web_url = start_web(env, web_port, host=host.address, netns=host.netns)
    host.processes.append(web)
    host.processes.append(
        start_worker(
            env,
            queues=SEND_QUEUES,
            concurrency=send_concurrency,
            name=f"send-{host.netns}",
            netns=host.netns,
        )
    )
    host.processes.append(
        start_worker(env, queues="inbound,context", concurrency=1, name="inbound", netns=host.netns)
    )


def submit_through(hosts: list[Host], drill: Drill, to: list[str]) -> list[str]:
    """Queue one message to each of ``to``, half through each host's API; their ids."""
    ids: list[str] = []
    for index, host in enumerate(hosts):
        drill.web_url = host.web_url
        ids += drill.submit(to[index :: len(hosts)])
    return ids


def sweep_sends(beat: Process) -> list[float]:
    """When ``beat`` sent the send sweep, from its JSON log lines."""
    times = []
    for line in beat.output().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if f"Sending due task {SWEEP_TASK}" in entry.get("message", ""):
            times.append(datetime.fromisoformat(entry["ts"]).timestamp())
    return times


def beat_check(beats: list[Process]) -> dict[str, Any]:
    """Whether the sweep was ever sent by two beats at once (see the module's step 3)."""
    sends = [sweep_sends(beat) for beat in beats]
    # Its interval, as one beat alone keeps it: the median gap between its own sends.
    interval = statistics.median(
        b - a for times in sends for a, b in zip(times, times[1:], strict=False)
    )
    merged = sorted(t for times in sends for t in times)
    gaps = [b - a for a, b in zip(merged, merged[1:], strict=False)]
    # Each beat's sends form one span; spans that cross mean two beats scheduled at once.
    spans = sorted((min(t), max(t)) for t in sends if t)
    interleaved = any(
        later[0] < earlier[1] for earlier, later in zip(spans, spans[1:], strict=False)
    )
    too_close = sum(1 for gap in gaps if gap < interval / 2)
    return {
        "sweep_sends_by_beat": [len(t) for t in sends],
        "sweep_interval_s": round(interval, 2),
        "min_gap_s": round(min(gaps), 2) if gaps else None,
        "sends_closer_than_half_interval": too_close,
        "beats_interleaved": interleaved,
        "beat_once": not interleaved and too_close == 0,
    }


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=80, help="the number's limit, messages/s")
    parser.add_argument("--seconds", type=int, default=30, help="seconds the limit is saturated")
    parser.add_argument("--freeze", type=float, default=60, help="seconds the host is frozen")
    parser.add_argument("--how", choices=["sigstop", "netcut"], default="sigstop")
    parser.add_argument("--concurrency", type=int, default=2, help="send processes per host")
    return parser


def run(args: argparse.Namespace) -> dict[str, Any]:
    reason = missing_privileges()
    if reason is not None:
        raise SystemExit(f"drill hosts cannot run here: {reason}")
    started = time.monotonic()
    result: dict[str, Any] = {"how": args.how, "freeze_s": args.freeze, "rate_limit": args.rate}
    with network() as net:
        redis_server = RedisServer(fsync="everysec", host=net.switch_address, netns=net.switch)
        sim_port, web_ports = free_port(), [free_port(), free_port()]
        env = gateway_env(
            redis_server.url,
            f"http://{net.root_address}:{sim_port}",
            CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT),
            SEND_RATE_LIMIT=f"{args.rate:g}",
            **DRILL_ENV,
        )
        first, second = net.hosts
        beats: list[Process] = []
        sim = None
        try:
            redis_server.start()
            # The first host's beat starts first and leads; that host is the one frozen, so
            # status webhooks go to the second one, which stays up.
            sim, sim_url = start_simulator(
                env,
                sim_port,
                f"http://{second.address}:{web_ports[1]}/webhooks/whatsapp",
                extra_args=["--throughput", "0"],
                host=net.root_address,
            )
            for host, port in zip(net.hosts, web_ports, strict=True):
                start_host(host, env, port, args.concurrency)
            for host in net.hosts:
                host.processes.append(start_beat(env, netns=host.netns))
                beats.append(host.processes[-1])
                if host is first:
                    wait_for(lambda: "holds the lock" in beats[0].output(), timeout=30)
            drill = Drill(redis_server, env, "", sim_url)
            senders = [p for h in net.hosts for p in h.processes if p.name.startswith("send-")]

            # 1. The rate limit, shared by both hosts' send workers.
            to = recipients(21, round(args.rate * (args.seconds + 5)))
            ids = submit_through(net.hosts, drill, to)
            statuses = drill.wait_final(ids, timeout=len(to) / args.rate * 3 + 120)
            wanted = set(to)
            arrivals = sorted(m["at"] for m in drill.received() if m["body"]["to"] in wanted)
            burst = max(1, round(args.rate * BURST_SECONDS))
            pace = pacing(arrivals, args.rate, burst)
            pace.pop("per_second")
            ratio = pace["mean_msgs_per_s"] / args.rate
            by_host = [len(SENT_LINE.findall(p.output())) for p in senders]
            result["rate"] = {
                **drill.outcome(ids, to, statuses),
                "mean_msgs_per_s": pace["mean_msgs_per_s"],
                "ratio_to_limit": round(ratio, 3),
                "max_in_1s_window": pace["max_in_1s_window"],
                "bound_1s_window": pace["bound_1s_window"],
                "sent_by_host": by_host,
            }
            rate_held = (
                ratio <= 1 + RATE_TOLERANCE
                and pace["max_in_1s_window"] <= pace["bound_1s_window"]
                and all(n > 0 for n in by_host)
            )

            # 2. The first host frozen while both hosts' messages flow.
            to = recipients(22, round(args.rate * (args.freeze + 15)))
            ids = submit_through(net.hosts, drill, to)
            time.sleep(3)
            froze_at = time.monotonic()
            sent_before = [len(SENT_LINE.findall(p.output())) for p in senders]
            freeze(net, first, args.how)
            try:
                time.sleep(args.freeze)
                sent_while_frozen = [
                    len(SENT_LINE.findall(p.output())) - n
                    for p, n in zip(senders, sent_before, strict=True)
                ]
            finally:
                thaw(net, first, args.how)
            frozen_for = time.monotonic() - froze_at
            statuses = drill.settle(ids, timeout=len(to) / args.rate * 3 + 240, still=90)
            result["freeze"] = {
                **drill.outcome(ids, to, statuses),
                "frozen_s": round(frozen_for, 1),
                "sent_by_host_while_frozen": sent_while_frozen,
            }
            # 3. Beat, across both hosts, for the whole drill; a freeze past the lock's TTL
            # must have handed the schedule to the other host's beat.
            result["beat"] = beat_check(beats)
            result["beat"]["took_over"] = all(result["beat"]["sweep_sends_by_beat"])
            takeover_due = args.freeze > keys.BEAT_LOCK_TTL + RENEW_INTERVAL
        finally:
            for host in net.hosts:
                host.signal_all(signal.SIGCONT)  # a stopped process cannot stop
                for proc in reversed(host.processes):
                    proc.stop()
            if sim is not None:
                sim.stop()
            redis_server.close()
    result["lost"] = result["rate"]["lost"] + result["freeze"]["lost"]
    result["accepted"] = result["rate"]["accepted"] + result["freeze"]["accepted"]
    result["delivered"] = result["rate"]["delivered"] + result["freeze"]["delivered"]
    result["dead_lettered"] = result["rate"]["dead_lettered"] + result["freeze"]["dead_lettered"]
    result["duplicated"] = result["rate"]["duplicated"] + result["freeze"]["duplicated"]
    result["seconds"] = round(time.monotonic() - started, 1)
    beat = result["beat"]
    result["passed"] = (
        rate_held
        and result["lost"] == 0
        and beat["beat_once"]
        and (beat["took_over"] or not takeover_due)
    )
    return result


def freeze(net: Network, host: Host, how: str) -> None:
    if how == "sigstop":
        host.signal_all(signal.SIGSTOP)
    else:
        ip("link", "set", host.port, "down", netns=net.switch)


def thaw(net: Network, host: Host, how: str) -> None:
    if how == "sigstop":
        host.signal_all(signal.SIGCONT)
    else:
        ip("link", "set", host.port, "up", netns=net.switch)


def main(argv: list[str] | None = None) -> int:
    return finish(run(parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
