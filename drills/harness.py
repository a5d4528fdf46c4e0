"""What every delivery drill shares: the stack of real processes, the send API, the simulator's
faults and records, and the outcome of each message.

A drill runs against a Redis of its own, the web app under gunicorn, an inbound worker, beat (for
the sweep that enqueues again the sends the broker lost) and the simulator over HTTP delivering
signed status webhooks; each drill starts its send workers itself. The tests of
``tests/delivery/test_drills.py`` and the command-line drills (``python -m drills.<name>``) use
this one module, so both count the same things the same way:

- accepted: messages the API answered 202;
- delivered: messages that reached ``read``;
- dead-lettered: messages the gateway gave up on, by reason;
- lost: accepted messages that are neither, when the drill ends;
- duplicated: messages the simulator received more than once (each extra copy counts one).
"""

from __future__ import annotations

import collections
import json
import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests
from celery import Celery

from app.delivery import dead_letters as dl
from app.delivery.dead_letters import DeadLetterStore
from app.delivery.messages import DEAD_LETTERED, READ, MessageStore
from bench.common import machine, today
from tests.stack import (
    TEST_CREDENTIALS,
    Process,
    RedisServer,
    free_port,
    gateway_env,
    start_beat,
    start_simulator,
    start_web,
    start_worker,
)

API_KEY = "drill-api-key-0123456789abcdef"
"""The send API's key in every drill (``GATEWAY_API_KEYS``)."""
NUMBER = TEST_CREDENTIALS["WHATSAPP_PHONE_NUMBER_ID"]
"""The sending number every drill sends from."""
SEND_QUEUES = "send.high,send.normal,send.bulk"

VISIBILITY_TIMEOUT = 10
"""Seconds before Redis hands a killed worker's task to another worker: short, so that
redeliveries happen within a drill. Every retry and deferral is capped below it."""

DRILL_ENV = {
    "GRAPH_READ_TIMEOUT": "1",
    "SEND_RETRY_BASE_DELAY": "0.2",
    "SEND_RETRY_MAX_DELAY": "2",
    "GATEWAY_API_KEYS": API_KEY,
}
"""Settings of every drill's processes: a hung send times out in a second, and retries come back
within seconds, so a drill is minutes long rather than hours."""

FAST_SENDS = {"SEND_RATE_LIMIT": "1000"}
"""The gateway's per-number limit raised to Meta's highest tier (from the default 80/s), for
drills of 10,000 messages; the simulator's own throughput limit is then off as well."""

MIXED_FAULTS = {
    "error_rate": 0.12,  # 500, code 1
    "throttle_rate": 0.08,  # 429, code 130429, Retry-After
    "retry_after": 1,
    "timeout_rate": 0.04,  # hangs past the client's read timeout, and never answers
    "hang_seconds": 3600,
    "error_codes": {"131000": 0.02, "131026": 0.03, "131047": 0.01},
}
"""30% of requests fail: transient 5xx, throttling, timeouts and a few permanent codes."""

EXPECTED_REASONS = {
    131026: dl.PERMANENT_ERROR,
    131047: dl.WINDOW_CLOSED,
}
"""The dead-letter reason each permanent code of :data:`MIXED_FAULTS` calls for; the others are
transient and only dead-letter a message as ``retries_exhausted``, after every attempt failed."""

NO_FAULTS = {
    "error_rate": 0,
    "unavailable_rate": 0,
    "throttle_rate": 0,
    "timeout_rate": 0,
    "slow_rate": 0,
    "error_codes": {},
    "failed_rate": 0,
    "status_order": "in_order",
    "duplicate_status_rate": 0,
    "hang_recipients": [],
    "late_answer_rate": 0,
}
"""Every fault of the simulator off; its latency model (Meta's answer times) stays on."""


@dataclass
class Drill:
    """The running stack, and what a drill asks of it."""

    redis: RedisServer
    env: dict[str, str]
    web_url: str
    simulator_url: str
    processes: list[Process] = field(default_factory=list)
    stopped: list[Process] = field(default_factory=list)
    """Processes stopped or killed during the drill; their logs are still read."""

    # --- processes --------------------------------------------------------------------------

    def worker(
        self, queues: str = SEND_QUEUES, concurrency: int = 4, pool: str = "prefork", **env: str
    ) -> Process:
        """Start a send worker (by default) with ``env`` over the drill's environment."""
        proc = start_worker(
            {**self.env, **env},
            queues=queues,
            concurrency=concurrency,
            pool=pool,
            name="drill-worker",
        )
        self.processes.append(proc)
        return proc

    def kill(self, proc: Process) -> None:
        """SIGKILL a worker and its pool processes at once: nothing acknowledges anything."""
        proc.kill(signal.SIGKILL)
        proc.proc.wait(timeout=10)
        proc.stop()  # closes its log
        self.processes.remove(proc)
        self.stopped.append(proc)

    def stop_workers(self) -> None:
        for proc in [p for p in self.processes if p.name == "drill-worker"]:
            proc.stop()
            self.processes.remove(proc)
            self.stopped.append(proc)

    def pool_pid_running(self, message_id: str) -> int | None:
        """The pool process running a send task of ``message_id`` now (alone or in a batch), if
        one is.

        Asked of the workers themselves (Celery's ``inspect active``), which name the process
        running each task.
        """
        app = Celery(broker=self.redis.url, set_as_current=False)
        try:
            replies = app.control.inspect(timeout=1.0).active() or {}
        finally:
            app.close()
        for tasks in replies.values():
            for task in tasks:
                first = task["args"][0] if task["args"] else None
                if message_id == first or (isinstance(first, list) and message_id in first):
                    return task["worker_pid"]
        return None

    def recovered_by_sweep(self) -> int:
        """Sends the broker lost that the sweep enqueued again, as the processes' logs say."""
        # Log lines are JSON or text; the count stands just before the phrase either way.
        return sum(
            int(found.group(1))
            for proc in self.processes + self.stopped
            for found in re.finditer(r"(\d+) sends were lost by the broker", proc.output())
        )

    # --- the API and the simulator ----------------------------------------------------------

    def post(self, path: str, body, **headers: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {API_KEY}", **headers}
        return requests.post(f"{self.web_url}{path}", json=body, headers=headers, timeout=60)

    def submit(self, recipients: list[str], priority: str = "normal") -> list[str]:
        """One template to each recipient, through the batch API; their ids."""
        ids: list[str] = []
        for start in range(0, len(recipients), 1000):
            chunk = recipients[start : start + 1000]
            messages = [template_to(to, priority) for to in chunk]
            response = self.post("/v1/messages/batch", {"messages": messages})
            assert response.status_code == 202, response.text
            ids += [m["id"] for m in response.json()["messages"]]
        return ids

    def faults(self, **faults) -> None:
        """Set the simulator's faults: ``faults``, and every other one off but the latency."""
        response = requests.put(
            f"{self.simulator_url}/_sim/faults", json={**NO_FAULTS, **faults}, timeout=5
        )
        response.raise_for_status()

    def simulator_record(self) -> dict[str, Any]:
        """What the simulator received: ``messages``, ``requests`` and ``refused`` by code."""
        return requests.get(f"{self.simulator_url}/_sim/messages", timeout=60).json()

    def received(self) -> list[dict]:
        return self.simulator_record()["messages"]

    def forget_received(self) -> None:
        requests.delete(f"{self.simulator_url}/_sim/messages", timeout=10).raise_for_status()

    def webhook_attempts(self) -> list[dict]:
        """Every webhook delivery attempt of the simulator: ``at``, ``status``, ``payload``."""
        return requests.get(f"{self.simulator_url}/_sim/webhooks", timeout=60).json()["attempts"]

    def count(self, recipients: list[str]) -> collections.Counter:
        """How often the simulator received a message for each of ``recipients``."""
        wanted = set(recipients)
        return collections.Counter(
            m["body"]["to"] for m in self.received() if m["body"]["to"] in wanted
        )

    # --- outcomes ---------------------------------------------------------------------------

    def statuses(self, ids: list[str]) -> dict[str, str]:
        client = self.redis.client()
        pipe = client.pipeline(transaction=False)
        for message_id in ids:
            pipe.hget(MessageStore.key(message_id), "status")
        return dict(zip(ids, pipe.execute(), strict=True))

    def settle(self, ids: list[str], timeout: float, still: float | None = None) -> dict[str, str]:
        """Wait until every message is ``read`` or dead-lettered; their statuses then (final or
        not). Gives up after ``timeout`` seconds, or once no message has moved for ``still``."""
        deadline = time.monotonic() + timeout
        statuses = self.statuses(ids)
        moved_at = time.monotonic()
        while True:
            # Only messages not yet final are asked about again: those stay final.
            pending = [i for i, s in statuses.items() if s not in (READ, DEAD_LETTERED)]
            if not pending or time.monotonic() > deadline:
                return statuses
            if still is not None and time.monotonic() - moved_at > still:
                return statuses
            time.sleep(1.0)
            now = self.statuses(pending)
            if any(statuses[i] != s for i, s in now.items()):
                moved_at = time.monotonic()
            statuses.update(now)

    def wait_final(self, ids: list[str], timeout: float) -> dict[str, str]:
        """Like :meth:`settle`, but a message left unfinished fails the drill, with the state of
        the broker and the history of a few of them."""
        statuses = self.settle(ids, timeout)
        stuck = [i for i, s in statuses.items() if s not in (READ, DEAD_LETTERED)]
        if not stuck:
            return statuses
        store, client = MessageStore(self.redis.client()), self.redis.client()
        broker = {
            "queues": {q: client.llen(q) for q in SEND_QUEUES.split(",")},
            "unacked": client.hlen("unacked"),
            "unacked_mutex": client.exists("unacked_mutex"),
        }
        raise AssertionError(
            f"not every message finished: {dict(collections.Counter(statuses.values()))}\n"
            f"broker: {broker}\n" + "\n".join(f"{i}: {store.get(i).history}" for i in stuck[:3])
        )

    def outcome(self, ids: list[str], recipients: list[str], statuses: dict[str, str]) -> dict:
        """The counts every drill reports, for messages ``ids`` sent one to each recipient."""
        counts = self.count(recipients)
        letters = DeadLetterStore(self.redis.client())
        dead = [i for i, s in statuses.items() if s == DEAD_LETTERED]
        reasons = collections.Counter(
            (letter.reason if (letter := letters.get(i)) else "missing") for i in dead
        )
        delivered = sum(1 for s in statuses.values() if s == READ)
        return {
            "accepted": len(ids),
            "delivered": delivered,
            "dead_lettered": len(dead),
            "dead_letter_reasons": dict(reasons),
            "lost": len(ids) - delivered - len(dead),
            "not_final": dict(
                collections.Counter(s for s in statuses.values() if s not in (READ, DEAD_LETTERED))
            ),
            "duplicated": sum(n - 1 for n in counts.values() if n > 1),
        }


@contextmanager
def drill_stack(
    visibility_timeout: int = VISIBILITY_TIMEOUT,
    status_delay: float = 0.05,
    simulator_args: list[str] | None = None,
    latency_ms: float | None = None,
    **env: str,
) -> Iterator[Drill]:
    """Start the stack (without send workers) and stop every process of it afterwards.

    ``env`` is added to :data:`DRILL_ENV` for every process; ``simulator_args`` go to
    ``wa-gateway simulator``. The simulator answers at Meta's speed (``SIMULATOR_LATENCY_MS``)
    unless ``latency_ms`` says otherwise.
    """
    redis_server = RedisServer().start()
    sim_port, web_port = free_port(), free_port()
    env = gateway_env(
        redis_server.url,
        f"http://127.0.0.1:{sim_port}",
        CELERY_VISIBILITY_TIMEOUT=str(visibility_timeout),
        **{**DRILL_ENV, **env},
    )
    drill = Drill(redis_server, env, "", "")
    try:
        simulator, drill.simulator_url = start_simulator(
            env,
            sim_port,
            f"http://127.0.0.1:{web_port}/webhooks/whatsapp",
            status_delay=status_delay,
            extra_args=simulator_args,
            latency_ms=latency_ms,
        )
        drill.processes.append(simulator)
        web, drill.web_url = start_web(env, web_port)
        drill.processes.append(web)
        inbound = start_worker(env, queues="inbound,context", concurrency=2, name="inbound")
        drill.processes.append(inbound)
        drill.processes.append(start_beat(env))  # runs the sweep for sends the broker lost
        yield drill
    finally:
        for proc in reversed(drill.processes):
            proc.stop()
        redis_server.close()


def template_to(to: str, priority: str = "normal") -> dict:
    return {
        "to": to,
        "type": "template",
        "template": {"name": "order_update", "language": {"code": "es"}},
        "priority": priority,
    }


def recipients(prefix: int, n: int) -> list[str]:
    """``n`` valid Colombian mobile numbers, distinct per drill (``prefix`` 0..99)."""
    return [f"5730{prefix:02d}{i:06d}" for i in range(n)]


def finish(result: dict[str, Any]) -> int:
    """Print a command-line drill's result as JSON, with the machine and the date; its exit
    status (0 if the drill's claims held)."""
    result = {**result, "machine": machine(), "date": today()}
    print(json.dumps(result, indent=2))
    return 0 if result["passed"] else 1


def report(name: str, **counts) -> None:
    """Print a test drill's counts on one line (``pytest -s`` shows them)."""
    print(f"\nDRILL {name}: {json.dumps(counts)}")
