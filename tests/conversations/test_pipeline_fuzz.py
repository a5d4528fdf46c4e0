"""Hostile webhooks through the real web app and workers: each example is a signed webhook with
``PARTS`` hostile messages and statuses beside one good message. Whatever the hostile parts
hold (huge numbers, lone surrogates, wrong types, path-like and newline-suffixed ids, junk
shaped like a BSUID), the good message is answered, no customer text or full phone number
reaches the processes' output, no unexpected error is raised, and every part that cannot be read
is an inbound dead letter.

``FUZZ_EXAMPLES`` counts hostile parts: CI runs the default 300 (30 webhooks); the long run in
docs/RELIABILITY.md sets 10,000 or more.
"""

from __future__ import annotations

import json
import os
import re
import time

import pytest
import requests
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from app.delivery.dead_letters import DeadLetterStore, inbound_id
from app.whatsapp.webhook import STATUS_NAME, WAMID, valid_unicode
from tests.fuzz import EXAMPLES, fuzz_settings, json_values
from tests.stack import (
    TEST_CREDENTIALS,
    RedisServer,
    free_port,
    gateway_env,
    signed_post,
    start_simulator,
    start_web,
    start_worker,
    text_webhook,
    wait_for,
)

PARTS = int(os.environ.get("FUZZ_PARTS", 10))
"""Hostile parts in each webhook."""

CANARY = "canario-privado"
"""In every hostile and good text: it must never reach a log line."""

huge_numbers = st.sampled_from([float("inf"), float("-inf"), int("9" * 4000), -(2**70), 1e300])
surrogate_text = st.builds(
    lambda a, s, b: f"{CANARY} {a}{s}{b}",
    st.text(max_size=20),
    st.sampled_from(["\ud800", "\udfff", "\udbff\udbff"]),
    st.text(max_size=20),
)
path_like = st.sampled_from(["../../x", "../../../../tmp/x", "/etc/passwd", "..", "a/../../b"])
newline_id = st.builds(
    lambda n, end: f"57300{n:07d}{end}",
    st.integers(0, 9_999_999),
    st.sampled_from(["\n", "\r\n", "\x00", " "]),
)
bsuid_junk = st.builds(
    lambda c, n, end: f"{c}.{n}{end}",
    st.sampled_from(["US", "CO", "US.ENT", ""]),
    st.integers(0, 10**20),
    st.sampled_from(["", "\n", "/..", "\ud800"]),
)
media_ids = st.one_of(path_like, newline_id, bsuid_junk, surrogate_text, st.just("1234"))
"""Media ids: hostile, customer text included (a refused id is never logged)."""
hostile_value = st.one_of(
    huge_numbers, surrogate_text, path_like, newline_id, bsuid_junk, json_values
)
MESSAGE_FIELDS = ["id", "from", "timestamp", "type", "text", "from_user_id", "context", "image"]
STATUS_FIELDS = ["id", "status", "timestamp", "recipient_id", "recipient_user_id", "errors"]


@st.composite
def hostile_part(draw, index: int) -> tuple[str, dict]:
    """A message or status shaped as Meta's, with one to three fields hostile."""
    phone = f"57301{draw(st.integers(0, 9_999_999)):07d}"
    if draw(st.booleans()):
        kind, fields = "message", MESSAGE_FIELDS
        part = {
            "from": phone,
            "id": f"wamid.hostile.{index}.{time.time_ns()}",
            "timestamp": str(int(time.time())),
            "type": draw(st.sampled_from(["text", "image", "interactive", "contacts"])),
            "text": {"body": f"{CANARY} {draw(st.text(max_size=30))}"},
            "image": {"id": draw(media_ids), "mime_type": "image/jpeg"},
        }
    else:
        kind, fields = "status", STATUS_FIELDS
        part = {
            "id": f"wamid.status.{index}.{time.time_ns()}",
            "status": draw(st.sampled_from(["sent", "delivered", "read", "failed"])),
            "timestamp": str(int(time.time())),
            "recipient_id": phone,
        }
    for name in draw(st.lists(st.sampled_from(fields), min_size=1, max_size=3, unique=True)):
        value = draw(hostile_value)
        if name == "image" and draw(st.booleans()):
            part[name] = {"id": draw(media_ids)}
        elif name == "text" and draw(st.booleans()):
            part[name] = {"body": value}
        else:
            part[name] = value
    return kind, part


class Pipeline:
    def __init__(self, redis_server, sim_url, web_url, processes):
        self.redis = redis_server.client()
        self.sim_url = sim_url
        self.web_url = web_url
        self.processes = processes
        self.phones: set[str] = set()
        self.sent = 0
        self.read: dict[str, int] = {}
        """How much of each process's output was checked."""

    def answered(self, wamid: str) -> bool:
        messages = requests.get(f"{self.sim_url}/_sim/messages", timeout=5).json()["messages"]
        return any(m["body"].get("context", {}).get("message_id") == wamid for m in messages)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    redis_server = RedisServer(appendonly=False).start()
    sim_port, web_port = free_port(), free_port()
    media = tmp_path_factory.mktemp("a") / "b" / "c" / "d" / "e" / "media"
    env = gateway_env(
        redis_server.url,
        f"http://127.0.0.1:{sim_port}",
        MEDIA_DIR=str(media),
        LOG_LEVEL="INFO",
        # The worker's metrics reach the web's /metrics, which the leak check reads too.
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path_factory.mktemp("metrics")),
    )
    processes = []
    try:
        simulator, sim_url = start_simulator(env, sim_port, None)
        processes.append(simulator)
        web, web_url = start_web(env, web_port)
        processes.append(web)
        processes.append(start_worker(env, concurrency=2))
        yield Pipeline(redis_server, sim_url, web_url, processes)
    finally:
        for proc in reversed(processes):
            proc.stop()
        redis_server.close()


# No shrinking: each example is a round trip through real processes.
@settings(
    fuzz_settings,
    max_examples=max(1, EXAMPLES // PARTS),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(data=st.data())
def test_hostile_siblings_cost_the_good_message_nothing(pipeline, data):
    parts = [data.draw(hostile_part(pipeline.sent + i)) for i in range(PARTS)]
    pipeline.sent += PARTS
    good_phone = f"57302{pipeline.sent:07d}"
    payload = text_webhook(good_phone, f"{CANARY} hola, ¿precio de la camiseta?")
    value = payload["entry"][0]["changes"][0]["value"]
    good_id = value["messages"][0]["id"]
    value["messages"] = [p for k, p in parts if k == "message"] + value["messages"]
    value["statuses"] = [p for k, p in parts if k == "status"]
    pipeline.phones.add(good_phone)
    for _, part in parts:
        for name in ("from", "recipient_id"):
            value = part.get(name)
            if isinstance(value, str) and re.fullmatch(r"\+?\d{8,15}", value.strip()):
                pipeline.phones.add(value.strip().lstrip("+"))
    body = json.dumps(payload).encode()
    assert signed_post(f"{pipeline.web_url}/webhooks/whatsapp", body).status_code == 200
    # 0 good siblings lost.
    wait_for(lambda: pipeline.answered(good_id), timeout=60)
    # Every part that cannot be read is an inbound dead letter.
    store = DeadLetterStore(pipeline.redis)
    for kind, part in parts:
        decoded = valid_unicode(json.loads(json.dumps(part)))
        if _unreadable(kind, decoded):
            assert inbound_id(kind, decoded) in store, part
    _assert_clean(pipeline)


def _unreadable(kind: str, part: dict) -> bool:
    """Whether the parse must refuse the part (the cases it is sure of)."""
    if not isinstance(part.get("id"), str) or not WAMID.fullmatch(part["id"]):
        return True
    if kind == "status" and not (
        isinstance(part.get("status"), str) and STATUS_NAME.fullmatch(part["status"])
    ):
        return True
    stamp = part.get("timestamp")
    return isinstance(stamp, float) and (stamp != stamp or stamp in (float("inf"), float("-inf")))


def _assert_clean(pipeline: Pipeline) -> None:
    """0 leaks and 0 unhandled exceptions in what each process printed since the last check
    (read once, and phones looked up by their digit runs: the long run stays linear), and 0 in
    the metrics every process shares."""
    for proc in pipeline.processes:
        output = proc.output()
        new = output[max(0, pipeline.read.get(proc.name, 0) - 200) :]
        pipeline.read[proc.name] = len(output)
        assert "Traceback" not in new, proc.name
        _assert_no_customer_data(pipeline, new, proc.name)
    metrics = requests.get(f"{pipeline.web_url}/metrics", timeout=10)
    assert metrics.status_code == 200 and "whatsapp_messages_received_total{" in metrics.text
    _assert_no_customer_data(pipeline, metrics.text, "/metrics")
    assert TEST_CREDENTIALS["WHATSAPP_ACCESS_TOKEN"] not in pipeline.processes[-1].output()


def _assert_no_customer_data(pipeline: Pipeline, text: str, where: str) -> None:
    assert CANARY not in text, where
    for run in re.findall(r"\d{8,}", text):
        for length in range(8, 16):
            for start in range(len(run) - length + 1):
                assert run[start : start + length] not in pipeline.phones, (where, run)
