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

# --- Conversations ------------------------------------------------------------------------------

CONVERSATION = PREFIX + ":conv:{phone_number_id}:{wa_id}"
"""A conversation's context (JSON): recent exchanges, the historical summary, last inbound time."""
CONVERSATION_TTL = DAY
"""A conversation is forgotten a day after its last activity (renewed on every write): Meta's
customer-service window is 24 hours, and context older than that misleads more than it helps."""

PROFILE = PREFIX + ":profile:{phone_number_id}:{wa_id}"
"""A customer's profile (JSON): message count, last interaction, preference, interests, ratings."""
PROFILE_TTL = 180 * DAY
"""Profiles outlive conversations so a returning customer is known; forgotten after six months
of silence, so the gateway does not keep personal data indefinitely."""

HANDOFF = PREFIX + ":handoff:{phone_number_id}:{wa_id}"
"""A conversation handed to a person (JSON): auto-replies stop while this key exists."""
HANDOFF_TTL = 30 * DAY
"""A handoff lasts until an operator ends it; one forgotten for a month ends by itself so the
customer is not left unanswered for ever."""

AI_REPLY = PREFIX + ":ai:reply:{digest}"
"""A cached AI reply (JSON), by hash of backend, normalised input and context fingerprint."""
AI_REPLY_TTL = 30 * 60
"""Answers go stale as prices and stock change; half an hour still absorbs bursts of the same
question."""

AI_STATS = PREFIX + ":ai:stats"
"""Hash of counters across every worker: cache ``hits`` and ``misses``, responder ``timeouts``
and ``errors`` (each one answered with the fallback reply). No TTL: counters are cumulative."""
