"""Beat's scheduler: Celery's in-memory one, sending due tasks only while it holds beat's lock.

Run beat on every host (``celery -A workers beat``): one schedules, the others stand by and take
over within ``BEAT_LOCK_TTL`` seconds of its host failing (:mod:`app.ops.beat_lock`).
"""

from __future__ import annotations

import logging

from celery.beat import Scheduler

from app import keys
from app.config import get_settings
from app.db import get_redis
from app.ops.beat_lock import BeatLock

log = logging.getLogger(__name__)

RENEW_INTERVAL = keys.BEAT_LOCK_TTL / 3
"""Seconds between a beat's looks at the lock: the holder renews it three times per TTL, so a
slow tick does not cost it the lock."""


class SingleBeatScheduler(Scheduler):
    """A scheduler that sends due tasks only while this beat holds the lock."""

    def __init__(self, *args, **kwargs):
        self.lock = BeatLock(get_redis(get_settings().redis_url))
        self.leading = False
        super().__init__(*args, **kwargs)

    def tick(self, *args, **kwargs) -> float:
        if not self.lock.hold():
            if self.leading:
                log.warning("beat: lost the lock; standing by")
                self.leading = False
            return RENEW_INTERVAL
        if not self.leading:
            log.info("beat: holds the lock; sending scheduled tasks")
            self.leading = True
        return min(super().tick(*args, **kwargs), RENEW_INTERVAL)

    def apply_entry(self, entry, producer=None) -> None:
        # Looked at again right before each send: a beat frozen between its tick's look and the
        # send (SIGSTOP, a paused VM) may have lost the lock meanwhile, and must not send on a
        # stale lead once it wakes. One frozen between this look and the publish still sends
        # that one task on waking; the scheduled tasks are sweeps and checks that bear a repeat.
        if not self.lock.hold():
            if self.leading:
                log.warning("beat: lost the lock; standing by")
                self.leading = False
            return
        super().apply_entry(entry, producer=producer)

    def close(self) -> None:
        super().close()
        if self.leading:
            self.lock.release()
