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
WAMID_INDEX_AFTER_READ_TTL = DAY
"""Once a message is read no status can move it, but Meta's webhooks can arrive out of order: a
late ``delivered`` still finds its message (and is kept in its history as ignored) for a day."""

EARLY_STATUSES = PREFIX + ":wamid:{wamid}:early"
"""Status webhooks (a list of JSON) for a wamid not recorded yet: Meta's webhooks can overtake its
answer to the send, so they arrive before the send worker records the wamid. Applied and removed
when it does."""
EARLY_STATUSES_TTL = 10 * 60
"""Far past the gap between Meta's answer and its record (milliseconds; seconds under load). A
wamid never recorded (another system's message, or a send whose process died before recording
Meta's answer, whose retry got a new wamid) has its statuses forgotten after this."""
EARLY_STATUSES_KEPT = 8
"""Statuses kept per wamid: a message has four kinds (sent, delivered, read, failed), so Meta's
repeats fit, and a flood of statuses for unknown wamids cannot grow one key without bound."""

REJECTED_MESSAGES = PREFIX + ":rejected"
"""Broker messages the workers refused to run (not JSON, unknown task, malformed), newest first."""
REJECTED_MESSAGES_KEPT = 1000
"""Entries kept; a flood of garbage cannot grow Redis without bound."""

SENDING_NUMBERS = PREFIX + ":numbers"
"""Hash of sending numbers: phone number id to JSON (display number, account, encrypted token).
No TTL: credentials stay until an operator removes them."""

# --- Operations (app/ops): metrics windows, alerts, worker heartbeats -------------------------

OPS_WINDOW_BUCKET = PREFIX + ":ops:window:{bucket}"
"""Counters of one time bucket (hash: sends, errors, durations...) that every process adds to, so
alert checks and scrape-time gauges see the whole deployment, not one process."""
OPS_BUCKET_SECONDS = 10
"""Width of one ops-window bucket: the resolution of every alert window."""

OPS_WINDOW_TTL = 3600
"""A bucket outlives the longest window anyone reads (ALERT_WINDOW_SECONDS is capped below it)."""

OPS_ACTIVE_CONVERSATIONS = PREFIX + ":ops:conversations"
"""Sorted set: a hashed customer id scored by the time they last wrote, for the active gauge."""
OPS_ACTIVE_CONVERSATIONS_TTL = 2 * DAY
"""Dropped when nobody has written for longer than any activity window."""

OPS_WORKER_HEARTBEATS = PREFIX + ":ops:workers"
"""Hash: worker hostname to its last heartbeat (JSON: queues, pid, at)."""
OPS_WORKER_HEARTBEATS_TTL = DAY
"""A deployment whose workers all stopped long ago forgets them."""

BEAT_LOCK = PREFIX + ":beat:lock"
"""String: the token of the one beat, among those of every host, that sends scheduled tasks."""
BEAT_LOCK_TTL = 15.0
"""Seconds the lock outlives its holder's last renewal: how long a frozen or dead host's beat
keeps the others waiting before one of them takes over."""

OPS_DEAD_LETTER_SAMPLES = PREFIX + ":ops:dead-letters:samples"
"""Sorted set of (time, dead-letter size) samples the alert checks compare to see growth."""
OPS_DEAD_LETTER_SAMPLES_TTL = DAY

OPS_ALERT_FIRING = PREFIX + ":ops:alert:{name}:firing"
"""Present while the alert is firing (value: since when); its removal announces recovery once."""
OPS_ALERT_FIRING_TTL = DAY
"""Refreshed at every evaluation; lapses only if evaluations stop altogether."""

OPS_ALERT_COOLDOWN = PREFIX + ":ops:alert:{name}:cooldown"
"""Taken with SET NX for the cooldown: whichever evaluator takes it sends; the others do not."""

OPS_ALERT_HISTORY = PREFIX + ":ops:alerts:history"
"""List of alert and recovery notifications (JSON), newest first, trimmed to a fixed length."""
OPS_ALERT_HISTORY_TTL = 90 * DAY

OPS_READINESS_PROBE = PREFIX + ":ops:readyz"
"""Written by ``/readyz`` to prove the broker accepts writes (not read-only, not out of memory)."""
OPS_READINESS_PROBE_TTL = 60
# --- Conversations ------------------------------------------------------------------------------
# ``{wa_id}`` in the conversation, profile, handoff, window and pair keys is the customer key the
# contact book gives (app/conversations/customers.py): a BSUID, or a phone number.

CUSTOMER_ID = PREFIX + ":customers:{phone_number_id}:{kind}:{value}"
"""One of a customer's ids (``kind``: phone, user, parent or username) to their customer key:
the contact book, filled from every webhook, so any id finds the one history."""
CUSTOMER = PREFIX + ":customer:{phone_number_id}:{customer}"
"""A customer's ids as last seen (hash: wa_id, user_id, parent_user_id, username, seen_at)."""
CUSTOMER_TTL = 180 * DAY
"""As long as a profile (renewed at every sighting): a returning customer is still recognised,
and the ids of one silent for six months are forgotten with the rest of their data."""


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

API_KEYS = PREFIX + ":apikeys"
"""Hash: API key id to JSON (label, SHA-256 of the key, created time, revoked, scopes and sending
numbers; a record without scopes predates them and holds ``admin``). Keys themselves are never
stored; no TTL, keys live until revoked and removed."""
API_KEY_DIGESTS = PREFIX + ":apikeys:digests"
"""Hash: SHA-256 of an active key to its id, so a request's key is found in one lookup."""
API_KEYS_REVOKED = PREFIX + ":apikeys:revoked"
"""Set of SHA-256 digests of revoked keys, including keys given in GATEWAY_API_KEYS, so any key
can be revoked at once, without a restart."""
# --- Reliable outbound delivery -------------------------------------------------------------------

SEND_LOCK = PREFIX + ":msg:{message_id}:lock"
"""Held while one task sends the message, so two deliveries of its task never both send it.
TTL: the task's hard time limit (``celeryconfig.task_time_limit``), passed in by the task: past
it the holder is dead for certain."""

IDEMPOTENCY = PREFIX + ":idempotency:{key_digest}"
"""A client's ``Idempotency-Key`` (by SHA-256) to the body digest and the message ids it created.
TTL: as long as the messages themselves (``MESSAGE_RETENTION_DAYS``), so a repeat returns the
same ids for as long as they can be read (``IdempotencyStore``)."""
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

TASK_JOURNAL = PREFIX + ":task:journal"
"""Hash of task id to the broker message of every webhook task queued and not yet finished: what
the sweep puts back on the queue if the broker loses the task (see ``TASK_JOURNAL_DUE``). No TTL:
entries leave when their task finishes."""

TASK_JOURNAL_DUE = PREFIX + ":task:journal:due"
"""Sorted set of the journal's task ids, scored by when each was queued or last started running.
One long past the broker's own redelivery, while its queue is empty, is a task the broker lost."""

STATUS_LANE = PREFIX + ":inbound:statuses"
"""List of webhook bodies that carry only statuses, as Meta signed them, oldest at the right:
accepted by the receiver and not yet taken by ``inbound.apply_statuses`` (see
``tasks.statuslane``). No TTL: bodies leave when a task takes them."""

STATUS_LANE_TAKEN = PREFIX + ":inbound:statuses:taken:{task_id}"
"""The bodies one ``inbound.apply_statuses`` run took from the lane and has not finished: a run
of the same task after its worker died applies them again; the sweep puts back those of a task
that will not run again. Deleted when the run finishes them."""

STATUS_LANE_TAKERS = PREFIX + ":inbound:statuses:takers"
"""Set of the task ids with bodies taken (``STATUS_LANE_TAKEN``), for the sweep."""

STATUS_LANE_NUDGE = PREFIX + ":inbound:statuses:nudge"
"""Set, to the task's id, while an ``inbound.apply_statuses`` task is queued and not yet started:
a webhook arriving meanwhile joins the lane without queueing a task of its own. Its TTL bounds how
long a lost task could hold the lane back before arrivals queue another."""

REPLICATION_MARK = PREFIX + ":replication:mark"
"""Written just before ``WAIT`` (``app.db.confirm_replicated``): ``WAIT`` counts only its own
connection's writes, and replication is ordered, so a replica holding this write holds every write
acknowledged before it, whichever connection (the broker's) made them. Nothing reads it."""
REPLICATION_MARK_TTL = 60
"""Seconds the mark lives, so it never outlasts its use."""

SEND_PENDING = PREFIX + ":send:pending"
"""Sorted set of messages not yet accepted by Meta nor dead-lettered, scored by when a send task
is next expected to run for them. A member long overdue is a task the broker lost (kombu's Redis
transport pops a task before it records it as unacknowledged, so a worker killed in between
loses it); the recovery sweep enqueues it again. No TTL: members leave when the send ends."""

SEND_WAITING = PREFIX + ":send:waiting"
"""Hash of ``<lane>:<phone_number_id>`` (empty id: the configured number) to the messages of that
lane and number in ``SEND_PENDING``: the queue's depth in messages, whether a task carries one or
a batch, read by the metrics, the ``queue_backlog`` alert and the lanes' caps. Changed in the same
script as ``SEND_PENDING``, so the two agree. No TTL: fields leave when they reach 0."""
# --- Templates, opt-out, campaigns, pricing --------------------------------------------------------

TEMPLATES = PREFIX + ":templates"
"""Hash: ``<name>:<language>`` to the template (JSON) as last synced or updated by Meta's
webhooks. No TTL: replaced whole by each sync."""
TEMPLATES_SYNCED_AT = PREFIX + ":templates:synced_at"
"""When the last sync finished; absent until the first, when sends are not checked."""

OPT_OUT = PREFIX + ":optout:{phone_number_id}:{customer}"
"""A customer opted out of marketing from this number (JSON: since when, and how). No TTL: an
opt-out holds until the customer opts in again."""

CAMPAIGN = PREFIX + ":campaign:{campaign_id}"
"""A campaign (hash): its definition as JSON, state, cursor, and pricing counters."""
CAMPAIGN_AUDIENCE = PREFIX + ":campaign:{campaign_id}:audience"
"""List of the campaign's recipients (JSON each: to or recipient, parameters), in order."""
CAMPAIGN_STATUS = PREFIX + ":campaign:{campaign_id}:status:{status}"
"""Set of audience positions that reached ``status``: idempotent counting, whatever Meta repeats."""
CAMPAIGN_TTL = 90 * DAY
"""A campaign and its counts are kept three months after its last change."""
CAMPAIGN_OF_MESSAGE = PREFIX + ":msg:{message_id}:campaign"
"""``<campaign id>:<position>`` of a campaign's message, so its statuses are counted there."""
CAMPAIGNS = PREFIX + ":campaigns"
"""Sorted set of campaign ids by creation time, for listing."""
CAMPAIGNS_DUE = PREFIX + ":campaigns:due"
"""Sorted set of running campaigns by when their next chunk is due: one long overdue lost its
dispatch task (the broker lost it), and the beat sweep queues it again."""
CAMPAIGNS_SCHEDULED = PREFIX + ":campaigns:scheduled"
"""Sorted set of scheduled campaign ids by start time; taken off (ZREM) by whoever starts one."""

PRICING_DAY = PREFIX + ":pricing:{day}"
"""Hash of one UTC day: ``<phone number id>|<category>|<billable>|<pricing model>`` to the
number of messages Meta priced so."""
PRICING_TTL = 400 * DAY
"""More than a year of days, to compare with Meta's invoices."""
PRICING_SEEN = PREFIX + ":pricing:seen:{wamid}"
"""A message already counted: Meta prices it in its sent and delivered statuses, and repeats."""
PRICING_SEEN_TTL = MESSAGE_TTL

# --- Events to the business's systems (app/events) -------------------------------------------------

EVENT_SUBSCRIPTIONS = PREFIX + ":events:subscriptions"
"""Hash: subscription id to JSON (URL, event types, created time, the secret encrypted with
Fernet). No TTL: a subscription lasts until it is deleted."""

EVENT_SEQUENCE = PREFIX + ":events:seq:{conversation_id}"
"""The last sequence number given to an event of this conversation (``{conversation_id}``: the
customer key), so a receiver can put one conversation's events in order."""
EVENT_SEQUENCE_TTL = PROFILE_TTL
"""As long as a profile (renewed by every event): a returning customer's events keep counting up."""

HANDOFFS_ACTIVE = PREFIX + ":handoffs:{phone_number_id}"
"""Sorted set: customer keys whose conversation with this number is handed off, scored by when
the handoff started; members whose ``HANDOFF`` key expired are dropped when listed."""
