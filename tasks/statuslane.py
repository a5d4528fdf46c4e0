"""The status lane: webhooks that carry only statuses, applied many to a task.

Meta sends about three status webhooks (sent, delivered, read) for every message a business sends,
so they are most of what the receiver takes in. As a Celery task each, the task's own handling
(reserving, running, acknowledging, journaling, counting its runs) cost more than applying the
statuses. The receiver puts such a body on a Redis list instead (``keys.STATUS_LANE``), marked seen
in the same atomic step, and queues an ``inbound.apply_statuses`` task only when none is waiting
(``keys.STATUS_LANE_NUDGE``); that task takes the lane's bodies a batch at a time until it is empty.

No body is lost or left behind:

- A task deletes the nudge mark before it takes anything, so a body pushed after that queues a
  task of its own, and one pushed before is in the lane when the task looks.
- A batch is moved, atomically, from the lane to a list of the task's own
  (``keys.STATUS_LANE_TAKEN``) and deleted only once applied. The same task run again after its
  worker died (late acknowledgement) applies it again first: applying a status twice moves
  nothing twice.
- The nudge task is journaled like every webhook task (``tasks.publish``): the sweep queues it
  again if the broker loses it. The sweep (:meth:`StatusLane.recover`) also puts back the batches of
  tasks that will not run again, and queues a task for a lane left waiting without one.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import redis

import celeryconfig
from app import keys
from tasks.publish import TaskPublisher, task_publisher

log = logging.getLogger(__name__)

APPLY_STATUSES = "inbound.apply_statuses"

NUDGE_TTL = int(celeryconfig.TASK_RECOVERY_GRACE)
"""Seconds a nudge mark lives: as long as the journal sweep may take to queue a lost task again."""

# KEYS[1] the body's seen-mark, KEYS[2] lane, KEYS[3] nudge mark. ARGV[1] mark TTL, ARGV[2] body.
# 0 already seen; else the body joins the lane: 1 if a task is waiting for it, 2 if none is.
_PUSH = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
if redis.call('EXISTS', KEYS[3]) == 1 then return 1 end
return 2
"""

# KEYS[1] lane, KEYS[2] nudge mark, KEYS[3] queue, KEYS[4] journal, KEYS[5] journal due times.
# ARGV[1] task message, ARGV[2] task id, ARGV[3] now, ARGV[4] nudge TTL. If the lane holds
# anything and no task is waiting for it, the task is queued and journaled: 1; otherwise 0.
_NUDGE = """
if redis.call('LLEN', KEYS[1]) == 0 then return 0 end
if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'EX', ARGV[4]) then return 0 end
redis.call('LPUSH', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[4], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[2])
return 1
"""

# KEYS[1] lane, KEYS[2] takers, KEYS[3] this task's taken list. ARGV[1] task id, ARGV[2] most
# bodies. The batch this task took before, if any (a run after its worker died), else up to
# ARGV[2] of the oldest bodies, moved to the task's list.
_TAKE = """
local held = redis.call('LRANGE', KEYS[3], 0, -1)
if #held > 0 then return held end
local bodies = redis.call('RPOP', KEYS[1], ARGV[2])
if not bodies then return {} end
redis.call('RPUSH', KEYS[3], unpack(bodies))
redis.call('SADD', KEYS[2], ARGV[1])
return bodies
"""

# KEYS[1] lane, KEYS[2] takers, KEYS[3] the taken list. ARGV[1] task id. The batch goes back to
# the lane's old end, to be taken next.
_PUT_BACK = """
local held = redis.call('LRANGE', KEYS[3], 0, -1)
if #held > 0 then
  redis.call('RPUSH', KEYS[1], unpack(held))
end
redis.call('DEL', KEYS[3])
redis.call('SREM', KEYS[2], ARGV[1])
return #held
"""


class StatusLane:
    """The lane in ``redis_client``; ``publisher`` queues its tasks."""

    def __init__(self, redis_client: redis.Redis, publisher: TaskPublisher):
        self.redis = redis_client
        self.publisher = publisher
        self._push = redis_client.register_script(_PUSH)
        self._nudge = redis_client.register_script(_NUDGE)
        self._take = redis_client.register_script(_TAKE)
        self._put_back = redis_client.register_script(_PUT_BACK)

    def push(self, body: str, *, dedup_key: str, dedup_ttl: int) -> bool:
        """Add a webhook body unless ``dedup_key`` is already marked; True if it was added.

        The body and its mark are one atomic step; the task, when none is waiting, a second
        one (built only then: most bodies arrive while one waits). A process that dies between
        the two leaves the body in the lane with no task marked: the next body, or the sweep,
        queues one."""
        pushed = int(
            self._push(
                keys=[dedup_key, keys.STATUS_LANE, keys.STATUS_LANE_NUDGE], args=[dedup_ttl, body]
            )
        )
        if pushed == 2:
            self.nudge()
        return pushed != 0

    def nudge(self) -> bool:
        """Queue a task for the lane if it holds bodies and none is waiting; True if queued."""
        queue = celeryconfig.QUEUE_INBOUND
        message, headers, properties, task_body = self.publisher.message(
            APPLY_STATUSES, [], queue, argsrepr="()"
        )
        queued = self._nudge(
            keys=[
                keys.STATUS_LANE,
                keys.STATUS_LANE_NUDGE,
                queue,
                keys.TASK_JOURNAL,
                keys.TASK_JOURNAL_DUE,
            ],
            args=[message, headers["id"], time.time(), NUDGE_TTL],
        )
        if queued:
            self.publisher.published(APPLY_STATUSES, queue, headers, properties, task_body)
        return bool(queued)

    def open(self) -> None:
        """Called by a task before it takes anything: a body pushed from now on queues a task of
        its own (see the module docstring)."""
        self.redis.delete(keys.STATUS_LANE_NUDGE)

    def take(self, task_id: str, most: int) -> list[str]:
        """The bodies ``task_id`` took before and has not finished, else up to ``most`` of the
        oldest in the lane, now held for it; empty when there is nothing to apply."""
        taken = keys.STATUS_LANE_TAKEN.format(task_id=task_id)
        return self._take(
            keys=[keys.STATUS_LANE, keys.STATUS_LANE_TAKERS, taken], args=[task_id, most]
        )

    def finish(self, task_id: str) -> None:
        """The bodies ``task_id`` took are applied: forget them."""
        pipe = self.redis.pipeline()
        pipe.delete(keys.STATUS_LANE_TAKEN.format(task_id=task_id))
        pipe.srem(keys.STATUS_LANE_TAKERS, task_id)
        pipe.execute()

    def taken(self, task_id: str) -> list[str]:
        """The bodies ``task_id`` holds."""
        return self.redis.lrange(keys.STATUS_LANE_TAKEN.format(task_id=task_id), 0, -1)

    def recover(self, will_run: Callable[[str], bool]) -> int:
        """Put back on the lane the bodies of tasks for which ``will_run`` is False (finished or
        dropped without applying them), then queue a task if the lane waits without one; returns
        how many bodies went back."""
        returned = 0
        for task_id in self.redis.smembers(keys.STATUS_LANE_TAKERS):
            if will_run(task_id):
                continue
            taken = keys.STATUS_LANE_TAKEN.format(task_id=task_id)
            returned += int(
                self._put_back(
                    keys=[keys.STATUS_LANE, keys.STATUS_LANE_TAKERS, taken], args=[task_id]
                )
            )
        if returned:
            log.warning(
                "%d status webhooks of tasks that will not run again are back in the lane", returned
            )
        self.nudge()
        return returned


_lanes: dict[int, StatusLane] = {}


def status_lane() -> StatusLane:
    """This process's lane, on its task publisher's Redis (built after the worker forked)."""
    lane = _lanes.get(os.getpid())
    if lane is None:
        publisher = task_publisher()
        lane = _lanes[os.getpid()] = StatusLane(publisher.redis, publisher)
    return lane
