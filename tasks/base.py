"""The task infrastructure shared by the gateway's tasks: deferrals the broker can honour, a guard
against poison messages, and no message lost to a Redis failure.

Three traps of Celery on Redis are closed here rather than left to each task:

- A countdown longer than the broker's visibility timeout makes Redis hand the waiting task to
  another worker, which runs it too. :meth:`GatewayTask.defer` is the one way our tasks wait,
  and it never asks for more than ``celeryconfig.MAX_DEFERRAL`` (half the visibility timeout).
- With late acknowledgement, a task that kills its worker (a crash in a C extension, the OOM
  killer, a hard time limit) is redelivered, kills the next worker, and so on forever. Each run
  counts itself in Redis when it starts and uncounts itself when it ends; runs left counted are
  workers that died. Past ``TASK_MAX_REDELIVERIES`` of them the task is not run again but handed
  to :meth:`GatewayTask.on_poison` (the send task dead-letters its message with reason
  ``poison``).
- The broker is the same Redis as the stores. When it fails mid-task, a retry would be published
  to the Redis that just failed, and Celery drops a message whose retry cannot be published
  (``Reject`` without requeue). The message is handed back instead: requeued at once if Redis
  answers again, or redelivered after the visibility timeout if it does not. Tasks are
  idempotent (claims, locks and wamids are recorded), so the second run resumes the first.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task
from celery.exceptions import Reject, Retry
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

import celeryconfig
from app import keys
from app.config import get_settings
from app.db import confirm_replicated, get_redis
from app.delivery.retry import RetryPolicy
from app.errors import ReplicationTimeout
from app.ops import metrics

log = logging.getLogger(__name__)

MAX_REDELIVERIES = get_settings().task_max_redeliveries
"""Runs of one task that may end with their worker dead before the task is treated as poison."""

SEND_POLICY = RetryPolicy.from_settings(max_deferral=celeryconfig.MAX_DEFERRAL)
"""The send retry policy, its delays capped by the broker's visibility timeout."""

REDIS_FAILURE_PAUSE = 1.0
"""Seconds to wait before handing a message back after a Redis error, so a flapping Redis does
not turn the requeue into a busy loop."""

# KEYS[1] the task's unfinished-runs counter, KEYS[2] the task journal, KEYS[3] its due times.
# ARGV[1] the task id, ARGV[2] '1' if the task is done (it will not come back as a retry or a
# requeue). Uncount this run, and drop the counter once no run is left, so a healthy task leaves
# nothing behind; a done task leaves the journal.
_FINISH_RUN = """
local left = redis.call('DECR', KEYS[1])
if left <= 0 then redis.call('DEL', KEYS[1]) end
if ARGV[2] == '1' then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
end
return left
"""

COMES_BACK = (Retry, RedisError, OperationalError)
"""Exceptions after which a task runs again (a retry, or its message handed back): its journal
entry must stay."""


def bounded_countdown(seconds: float) -> float:
    """``seconds`` within [0, MAX_DEFERRAL]: the longest wait the broker can honour."""
    return min(max(float(seconds), 0.0), celeryconfig.MAX_DEFERRAL)


class GatewayTask(Task):
    """Base of every gateway task (see the module docstring for the three traps it closes)."""

    max_redeliveries = MAX_REDELIVERIES

    keeps_failed_work = False
    """Whether an unexpected error goes to :meth:`on_unexpected_error` instead of failing the
    task (Redis failures and retries are not unexpected)."""

    def on_unexpected_error(self, exc: Exception, *args: Any, **kwargs: Any) -> Any:
        """Keep the work of a run that failed unexpectedly; its return is the task's result."""
        raise exc

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._guarded_run(*args, **kwargs)
        except (RedisError, OperationalError) as exc:  # OperationalError: a publish to Redis
            raise self._hand_back(exc) from None

    def _guarded_run(self, *args: Any, **kwargs: Any) -> Any:
        task_id = self.request.id
        if task_id is None:  # called directly, not by a worker: nothing to guard
            return self.run(*args, **kwargs)
        redis_client = get_redis(get_settings().redis_url)
        key = keys.TASK_UNFINISHED.format(task_id=task_id)
        pipe = redis_client.pipeline()
        pipe.incr(key)
        pipe.expire(key, keys.TASK_UNFINISHED_TTL)
        pipe.zadd(keys.TASK_JOURNAL_DUE, {task_id: time.time()}, xx=True)  # seen alive now
        died = pipe.execute()[0] - 1  # earlier runs that never finished
        if died > self.max_redeliveries:
            log.error("task %s[%s] killed its worker %d times: poison", self.name, task_id, died)
            redis_client.delete(key)
            result = self.on_poison(died, *args, **kwargs)
            self._finish(redis_client, key, task_id, done=True)
            return result
        done = False
        figures = None
        try:
            with metrics.held() as figures:
                result = self.run(*args, **kwargs)
            done = True
            return result
        except COMES_BACK:
            raise
        except Reject as reject:
            done = not reject.requeue
            raise
        except Exception as exc:
            done = True  # failed for good: the broker drops it, so must the journal
            if not self.keeps_failed_work:
                raise
            return self.on_unexpected_error(exc, *args, **kwargs)
        except BaseException:
            done = True
            raise
        finally:
            self._finish(redis_client, key, task_id, done, figures)

    @staticmethod
    def _finish(
        redis_client: Any,
        key: str,
        task_id: str,
        done: bool,
        figures: metrics.HeldFigures | None = None,
    ) -> None:
        journal = (keys.TASK_JOURNAL, keys.TASK_JOURNAL_DUE)
        # The run's metrics go in the same round trip; their failure never fails the task.
        pipe = redis_client.pipeline(transaction=False)
        if figures is not None and not figures.queue(redis_client, pipe):
            figures.flush()
        pipe.eval(_FINISH_RUN, 3, key, *journal, task_id, "1" if done else "0")
        finished = pipe.execute(raise_on_error=False)[-1]
        if isinstance(finished, Exception):
            raise finished
        # With REDIS_MIN_REPLICAS, the run's writes (a send's wamid, a reply's claim) reach a
        # replica before the broker hears the acknowledgement: a failover cannot then forget
        # that a message went and send it again.
        settings = get_settings()
        try:
            confirm_replicated(
                redis_client, settings.redis_min_replicas, settings.redis_wait_timeout
            )
        except ReplicationTimeout as exc:
            log.warning("task %s finished, not yet replicated: %s", task_id, exc)

    def on_poison(self, deaths: int, *args: Any, **kwargs: Any) -> Any:
        """Called instead of running a task whose earlier runs killed ``deaths`` workers.

        By default the message is dropped with an error in the log; tasks whose work must not
        vanish (sends) override this to keep it.
        """
        log.error("task %s dropped as poison after %d dead workers", self.name, deaths)
        return None

    def defer(self, seconds: float, **options: Any) -> Exception:
        """A retry in ``seconds`` (at most MAX_DEFERRAL) that does not hold a worker slot.

        Returns the exception to raise, like ``Task.retry``. Retries are not limited here: each
        task keeps its own budgets (see :class:`app.delivery.retry.RetryPolicy`).
        """
        return self.retry(countdown=bounded_countdown(seconds), max_retries=None, **options)

    def retry(self, *args: Any, **kwargs: Any) -> Exception:
        # The retry is published anew: keep the summary the first publish showed (in logs and
        # Flower) rather than let Celery print the arguments, customer text and all.
        for name in ("argsrepr", "kwargsrepr"):
            if getattr(self.request, name, None) is not None:
                kwargs.setdefault(name, getattr(self.request, name))
        try:
            return super().retry(*args, **kwargs)
        except Reject as reject:
            if isinstance(reject.reason, (RedisError, OperationalError, OSError)):
                raise self._hand_back(reject.reason) from None
            raise

    def _hand_back(self, exc: Exception) -> Reject:
        log.warning(
            "%s: Redis failed (%s); handing the message back", self.name, type(exc).__name__
        )
        time.sleep(REDIS_FAILURE_PAUSE)
        return Reject(exc, requeue=True)


class InboundUnitTask(GatewayTask):
    """Base of the inbound, context and answer tasks: each run is one unit of inbound work (a
    webhook, a turn, a reply), and a run that fails unexpectedly, or whose retries ran out, or
    that killed its workers, dead-letters its unit (direction ``inbound``, replayable) instead
    of dropping it. The log says which error and where, never its message: it may quote the
    customer."""

    keeps_failed_work = True
    unit_kind = "turn"
    """What the task's one argument is, as its dead letters name it."""

    def on_unexpected_error(self, exc: Exception, *args: Any, **kwargs: Any) -> Any:
        from app.conversations.inbound import error_of
        from app.delivery import dead_letters as dl

        error = error_of(exc)
        retries = self.request.retries or 0
        exhausted = self.max_retries is not None and retries >= self.max_retries > 0
        reason = dl.RETRIES_EXHAUSTED if exhausted else dl.INTERNAL_ERROR
        log.error(
            "%s[%s]: %s at %s",
            self.name,
            self.request.id,
            error["class"],
            error["where"],
            extra={"dead_letter_reason": reason},
        )
        return self.dead_letter(reason, error, *args, **kwargs)

    def on_poison(self, deaths: int, *args: Any, **kwargs: Any) -> Any:
        from app.delivery import dead_letters as dl

        error = {"message": f"its task killed {deaths} workers", "code": None}
        return self.dead_letter(dl.POISON, error, *args, **kwargs)

    def dead_letter(
        self, reason: str, error: dict[str, Any], unit: Any = None, *args: Any, **kwargs: Any
    ) -> dict[str, Any]:
        """Keep ``unit`` (the task's argument) as an inbound dead letter; the task's result."""
        from app.delivery.dead_letters import DeadLetterStore

        redis_client = get_redis(get_settings().redis_url)
        letter = DeadLetterStore(redis_client).add_inbound(
            self.unit_kind,
            reason,
            unit,
            task=self.name,
            payload=unit,
            source=self.request.id,
            error=error,
        )
        return {"dead_lettered": [letter.id]}
