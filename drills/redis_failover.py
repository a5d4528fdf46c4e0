"""Drill: the Redis master is SIGKILLed during a flood of webhooks and sends; Sentinel promotes
its replica and the gateway follows without a restart.

One master, one replica and three Sentinels run locally, the gateway reaches them through a
``sentinel://`` ``REDIS_URL`` with ``REDIS_MIN_REPLICAS=1``, so a webhook is answered 200 and a
send 202 only once the replica holds it. Webhooks are posted as Meta posts them (again, with
backoff, until answered 200); sends go through the batch API in small batches, each retried with
its ``Idempotency-Key`` until answered 202, as a careful client does. The killed master is
started again once the replica has taken over, and rejoins as the new master's replica.

Counted against the simulator: accepted (200 or 202), delivered (a reply to each accepted
webhook's wamid, each accepted send at its recipient), lost (accepted and never delivered: goal
0), duplicated (extra copies after the first: goal 0), and seconds from the kill until a send
reaches the simulator again.

    python -m drills.redis_failover --webhooks 5000 --sends 5000
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from bench.common import procfile_web
from drills.harness import API_KEY, DRILL_ENV, FAST_SENDS, finish, recipients, template_to
from drills.redis_outage import deliver
from tests.stack import (
    SentinelGroup,
    free_port,
    gateway_env,
    start_beat,
    start_simulator,
    start_worker,
    text_webhook,
    wait_for,
)

SEND_BATCH = 25
"""Messages per send request: small, so that the kill falls inside many requests' lives."""


def submit(
    session: requests.Session,
    url: str,
    batch: list[str],
    stats: dict,
    lock: threading.Lock,
    deadline: float,
) -> None:
    """Send one batch the way a careful client does: the same body and ``Idempotency-Key`` again,
    with backoff, until answered 202 (or refused for good)."""
    body = {"messages": [template_to(to) for to in batch]}
    headers = {"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": str(uuid.uuid4())}
    delay = 0.2
    while time.monotonic() < deadline:
        try:
            status = session.post(url, json=body, headers=headers, timeout=10).status_code
        except requests.RequestException:
            status = None
        if status == 202:
            with lock:
                stats["sends_accepted"] += len(batch)
                stats["accepted_sends"].extend(batch)
            return
        if status is not None and 400 <= status < 500 and status not in (409, 429):
            break  # refused for good: no retry would change the answer
        with lock:
            stats["send_refusals"][str(status)] = stats["send_refusals"].get(str(status), 0) + 1
        time.sleep(delay)
        delay = min(delay * 2, 5.0)
    with lock:
        stats["sends_never_accepted"] += len(batch)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--webhooks", type=int, default=5000)
    parser.add_argument("--sends", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=100.0, help="webhooks (and sends) per second")
    parser.add_argument("--visibility-timeout", type=int, default=30)
    return parser


def run(args: argparse.Namespace) -> dict:
    group = SentinelGroup(replicas=1).start()
    sim_port, web_port = free_port(), free_port()
    env = gateway_env(
        "",
        f"http://127.0.0.1:{sim_port}",
        CELERY_VISIBILITY_TIMEOUT=str(args.visibility_timeout),
        REDIS_MIN_REPLICAS="1",
        **{**DRILL_ENV, **FAST_SENDS, **group.env()},
    )
    processes = []
    stats: dict = {
        "webhooks_offered": args.webhooks,
        "sends_offered": args.sends,
        "accepted": 0,
        "accepted_after_refusal": 0,
        "never_accepted": 0,
        "refusals": {},
        "sends_accepted": 0,
        "sends_never_accepted": 0,
        "send_refusals": {},
        "accepted_sends": [],
    }
    began = time.monotonic()
    try:
        sim, sim_url = start_simulator(env, sim_port, None)  # no status webhooks: count arrivals
        processes.append(sim)
        processes.append(procfile_web("app.web:create_app()", web_port, env))
        processes.append(start_worker(env, queues="context,inbound", concurrency=3, name="inbound"))
        processes.append(
            start_worker(env, queues="send.high,send.normal,send.bulk", concurrency=3, name="send")
        )
        processes.append(start_beat(env))  # the sweeps of tasks and sends the broker lost
        base = f"http://127.0.0.1:{web_port}"
        webhooks = [
            json.dumps(
                text_webhook(f"57301{i:07d}", "Hola", wamid=f"wamid.failover{i:08d}")
            ).encode()
            for i in range(args.webhooks)
        ]
        to = recipients(20, args.sends)
        batches = [to[i : i + SEND_BATCH] for i in range(0, len(to), SEND_BATCH)]
        lock, session = threading.Lock(), requests.Session()
        deadline = time.monotonic() + 600
        failover: dict = {}

        def kill_master() -> None:
            time.sleep(max(2.0, args.webhooks / args.rate / 3))
            failover["killed_at"] = time.time()
            crashed = group.crash_master()
            wait_for(lambda: group.master_port() != crashed.port, timeout=60, interval=0.1)
            failover["promoted_at"] = time.time()
            crashed.start()  # rejoins as the new master's replica, so WAIT is met again

        killer = threading.Thread(target=kill_master)
        killer.start()
        started = time.monotonic()
        steps = max(len(webhooks), len(batches) * SEND_BATCH)
        with ThreadPoolExecutor(max_workers=48) as pool:
            for i in range(steps):
                if i < len(webhooks):
                    url = f"{base}/webhooks/whatsapp"
                    pool.submit(deliver, session, url, webhooks[i], stats, lock, deadline)
                if i % SEND_BATCH == 0 and i // SEND_BATCH < len(batches):
                    batch = batches[i // SEND_BATCH]
                    pool.submit(
                        submit, session, f"{base}/v1/messages/batch", batch, stats, lock, deadline
                    )
                time.sleep(max(0.0, (i + 1) / args.rate - (time.monotonic() - started)))
        killer.join()
        print(
            f"offered; accepted so far: {stats['accepted']} webhooks, "
            f"{stats['sends_accepted']} sends",
            file=sys.stderr,
            flush=True,
        )

        def received() -> list[dict]:
            return requests.get(f"{sim_url}/_sim/messages", timeout=60).json()["messages"]

        wanted_replies = {f"wamid.failover{i:08d}" for i in range(args.webhooks)}
        wanted_sends = set(stats["accepted_sends"])

        def tally() -> tuple[collections.Counter, collections.Counter, list[dict]]:
            messages = received()
            replies = collections.Counter(
                m["body"].get("context", {}).get("message_id") for m in messages
            )
            sends = collections.Counter(
                m["body"]["to"] for m in messages if m["body"]["to"] in wanted_sends
            )
            return replies, sends, messages

        # Drain: tasks in flight at the kill come back after the visibility timeout; give up once
        # nothing has moved for longer than that.
        last, still = -1, time.monotonic()
        while True:
            replies, sends, messages = tally()
            done = len(wanted_replies & set(replies)) + len(sends)
            if done >= stats["accepted"] + len(wanted_sends):
                break
            if done != last:
                print(f"delivered {done}", file=sys.stderr, flush=True)
                last, still = done, time.monotonic()
            elif time.monotonic() - still > args.visibility_timeout + 30:
                break
            time.sleep(1)
        # Sends in flight at the kill may still land just after it: sends resume with the first
        # message to reach the simulator once a replica has been promoted.
        resumed = min(
            (m["at"] for m in messages if m["at"] >= failover["promoted_at"]), default=None
        )
        lost_replies = len(wanted_replies - set(replies)) - stats["never_accepted"]
        lost_sends = len(wanted_sends - set(sends))
        duplicated_replies = sum(n - 1 for w, n in replies.items() if w in wanted_replies and n > 1)
        duplicated_sends = sum(n - 1 for n in sends.values() if n > 1)
        stats.pop("accepted_sends")
        result = {
            **stats,
            "webhooks_accepted": stats.pop("accepted"),
            "accepted": 0,
            "delivered": len(wanted_replies & set(replies)) + len(sends),
            "lost": max(0, lost_replies) + lost_sends,
            "lost_webhooks": max(0, lost_replies),
            "lost_sends": lost_sends,
            "duplicated": duplicated_replies + duplicated_sends,
            "duplicated_replies": duplicated_replies,
            "duplicated_sends": duplicated_sends,
            "failover_s": round(failover["promoted_at"] - failover["killed_at"], 2),
            "sends_resumed_after_s": None
            if resumed is None
            else round(resumed - failover["killed_at"], 2),
            "seconds": round(time.monotonic() - began, 1),
        }
        result["accepted"] = result["webhooks_accepted"] + result["sends_accepted"]
        result["passed"] = result["lost"] == 0 and result["duplicated"] == 0 and resumed is not None
    finally:
        for proc in reversed(processes):
            proc.stop()
        group.close()
    print("logs: " + " ".join(str(p.log_path) for p in processes), file=sys.stderr)
    return result


def main(argv: list[str] | None = None) -> int:
    return finish(run(parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
