"""Every Redis key template and TTL the gateway uses, each with its reason.

All values stored under these keys are JSON or plain strings; nothing is ever pickled.
"""

from __future__ import annotations

PREFIX = "wa"
"""Namespace for every gateway key, so a shared Redis can be inspected and cleaned safely."""

DAY = 24 * 3600

META_RETRY_WINDOW = 7 * DAY
"""Meta redelivers an unacknowledged webhook for up to 7 days; dedup keys must outlive that."""

WEBHOOK_SEEN = PREFIX + ":webhook:seen:{digest}"
"""A webhook body (by SHA-256) already enqueued; a redelivery of it is answered 200 and dropped."""
WEBHOOK_SEEN_TTL = META_RETRY_WINDOW

INBOUND_MESSAGE = PREFIX + ":inbound:{wamid}"
"""An inbound message claimed for processing ("processing") or finished ("done")."""
INBOUND_DONE_TTL = META_RETRY_WINDOW
INBOUND_PROCESSING_TTL = 10 * 60
"""A claim by a worker that dies mid-task expires, so the broker's redelivery can process it."""

MESSAGE = PREFIX + ":msg:{message_id}"
"""An outbound message record (hash): payload, status, wamid, attempts, error, history."""
MESSAGE_TTL = 30 * DAY
"""Long enough to receive Meta's late statuses (up to 30 days) and answer status queries."""

WAMID_INDEX = PREFIX + ":wamid:{wamid}"
"""Meta's message id to ours, so status webhooks find the message they concern."""
WAMID_INDEX_TTL = MESSAGE_TTL

# --- Reliable outbound delivery -------------------------------------------------------------------

SEND_LOCK = PREFIX + ":msg:{message_id}:lock"
"""Held while one task sends the message, so two deliveries of its task never both send it.
TTL: the task's hard time limit (``celeryconfig.task_time_limit``), passed in by the task: past
it the holder is dead for certain."""

IDEMPOTENCY = PREFIX + ":idempotency:{key_digest}"
"""A client's ``Idempotency-Key`` (by SHA-256) to the body digest and the message ids it created."""
IDEMPOTENCY_TTL = MESSAGE_TTL
"""As long as the messages themselves: a repeat returns the same id for as long as it can be read."""
IDEMPOTENCY_PENDING_TTL = 60
"""A key claimed by a request still enqueueing; if that request dies, the client may retry after this."""

DEAD_LETTERS = PREFIX + ":dlq"
"""Sorted set of dead-lettered message ids, scored by the time of their last failure."""
DEAD_LETTER = PREFIX + ":dlq:{message_id}"
"""One dead letter (JSON): the full message, the error, attempts, failure times and the reason.
No TTL: a dead letter is kept until an operator replays or purges it."""

CUSTOMER_WINDOW = PREFIX + ":window:{phone_number_id}:{wa_id}"
"""Unix time of the customer's last inbound message to this sending number."""
CUSTOMER_WINDOW_TTL = DAY
"""Meta's customer service window: free-form messages only within 24 hours of the last inbound."""

RATE_SENDER = PREFIX + ":rate:{{{phone_number_id}}}"
"""Token bucket (GCRA) of a sending number, shared by every worker. The hash tag keeps a number's
buckets in one cluster slot, so one script can check the number and the recipient together.
TTL: set by the script to just past the bucket's last use."""

RATE_PAIR = PREFIX + ":rate:{{{phone_number_id}}}:pair:{wa_id}"
"""Token bucket of one (sending number, recipient) pair: Meta's pair rate limit. TTL as above."""

TASK_UNFINISHED = PREFIX + ":task:{task_id}:unfinished"
"""Runs of a task that started and have not finished: each one left over is a worker that died
running it. Counted to dead-letter a poison message instead of redelivering it forever."""
TASK_UNFINISHED_TTL = DAY
"""Far longer than any run of redeliveries (each one comes back within the visibility timeout)."""

SEND_PENDING = PREFIX + ":send:pending"
"""Sorted set of messages not yet accepted by Meta nor dead-lettered, scored by when a send task
is next expected to run for them. A member long overdue is a task the broker lost (kombu's Redis
transport pops a task before it records it as unacknowledged, so a worker killed in between
loses it); the recovery sweep enqueues it again. No TTL: members leave when the send ends."""
