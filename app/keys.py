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

REJECTED_MESSAGES = PREFIX + ":rejected"
"""Broker messages the workers refused to run (not JSON, unknown task, malformed), newest first."""
REJECTED_MESSAGES_KEPT = 1000
"""Entries kept; a flood of garbage cannot grow Redis without bound."""

SENDING_NUMBERS = PREFIX + ":numbers"
"""Hash of sending numbers: phone number id to JSON (display number, account, encrypted token).
No TTL: credentials stay until an operator removes them."""
