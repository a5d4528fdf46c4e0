"""Two beats on one Redis, as two hosts run them: one sends the scheduled tasks, and the other
takes over when the first is frozen (SIGSTOP), within the lock's TTL."""

from __future__ import annotations

import signal
import time

import pytest

from app import keys
from tests.stack import RedisServer, gateway_env, start_beat, wait_for

pytestmark = pytest.mark.timeout(120)

SENDING = "Scheduler: Sending due task"


def sends(proc) -> int:
    return proc.output().count(SENDING)


def test_only_the_beat_holding_the_lock_sends_and_another_takes_over_a_frozen_one():
    redis_server = RedisServer(appendonly=False).start()
    # The send sweep runs every second with a 10 s visibility timeout: ticks to count.
    env = gateway_env(redis_server.url, "http://127.0.0.1:9", CELERY_VISIBILITY_TIMEOUT="10")
    beats = []
    try:
        beats = [start_beat(env), start_beat(env)]
        wait_for(lambda: any(sends(b) >= 3 for b in beats), timeout=30)
        leader, standby = sorted(beats, key=sends, reverse=True)
        time.sleep(3)
        assert sends(standby) == 0 and sends(leader) >= 5
        token = redis_server.client().get(keys.BEAT_LOCK)
        leader.kill(signal.SIGSTOP)
        try:
            wait_for(lambda: sends(standby) >= 3, timeout=keys.BEAT_LOCK_TTL + 15)
            frozen_sends = sends(leader)
        finally:
            leader.kill(signal.SIGCONT)
        time.sleep(3)
        # Back from its freeze, the first beat finds another holder. Frozen between its last look
        # at the lock and the publish that followed it, it still sends that one task on waking
        # (nothing fences the broker against a stale holder); after its next look, nothing.
        woken_sends = sends(leader)
        assert woken_sends - frozen_sends <= 1
        time.sleep(2)
        assert sends(leader) == woken_sends
        assert redis_server.client().get(keys.BEAT_LOCK) not in (None, token)
        assert "lost the lock; standing by" in leader.output()
    finally:
        for beat in beats:
            beat.stop()
        redis_server.close()
