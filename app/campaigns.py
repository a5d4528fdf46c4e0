"""Campaigns: one approved template sent to an audience, on the bulk lane, at a share of the
sending number's rate.

A campaign is created ``running`` (or ``scheduled`` with ``schedule_at``), then handed out in
chunks of :data:`CHUNK_SIZE` recipients (:func:`dispatch_chunk`, one task per chunk, the next
due when the campaign's share of the number's rate has sent this one). Each recipient goes
through the send API's own checks (:func:`app.delivery.intake.prepare`): an opted-out customer
is skipped and counted ``opted_out``, a recipient the checks refuse is counted ``invalid``, the
others are recorded and queued like any message, so the send path applies the rate and pair
limits and the retries. Message ids are derived from the campaign and the position, so a chunk
run twice queues nothing twice.

Counts are of recipients that reached each status (``queued``, ``sent``, ``delivered``, ``read``,
``failed``, ``opted_out``, ``invalid``): a message read also counts as sent and delivered. They
are sets of positions, so Meta's repeated webhooks count once. Pricing categories are counted
from the status webhooks, once per message.

States: ``scheduled`` -> ``running`` -> ``finished``; ``running`` <-> ``paused``; any but
``finished`` -> ``cancelled``. A pause or cancel stops the campaign at its next chunk: what is
already queued (one chunk at most) is still sent.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from app import keys
from app.conversations.customers import CustomerBook
from app.conversations.optout import OptOutBook
from app.delivery import intake
from app.delivery.messages import MessageStore, NewMessage
from app.delivery.window import CustomerWindows
from app.errors import DeliveryError
from app.events.delivery import emit
from app.events.subscriptions import CAMPAIGN_FINISHED
from app.templates import APPROVED, TemplateStore
from app.whatsapp.ids import is_phone_number_id

log = logging.getLogger(__name__)

SCHEDULED, RUNNING, PAUSED, CANCELLED, FINISHED = (
    "scheduled",
    "running",
    "paused",
    "cancelled",
    "finished",
)
STATES = (SCHEDULED, RUNNING, PAUSED, CANCELLED, FINISHED)

QUEUED, SENT, DELIVERED, READ, FAILED, OPTED_OUT, INVALID = (
    "queued",
    "sent",
    "delivered",
    "read",
    "failed",
    "opted_out",
    "invalid",
)
COUNTED = (QUEUED, SENT, DELIVERED, READ, FAILED, OPTED_OUT, INVALID)
"""The statuses a campaign counts, in the order its answer lists them."""

_REACHED = {
    "sent": (SENT,),
    "delivered": (SENT, DELIVERED),
    "read": (SENT, DELIVERED, READ),
    "failed": (FAILED,),
}
"""A status webhook, and the counts the recipient is then in."""

PRICED = "priced"
"""The set of positions whose pricing is counted already."""

CHUNK_SIZE = 200
"""Recipients one dispatch task hands out: small enough that a pause takes effect soon and a
task is short, large enough that a 100,000-recipient campaign is 500 tasks."""

MAX_AUDIENCE = 100_000
"""Recipients one campaign may have."""

MAX_PARAMETERS = 20
"""Body parameters one recipient may carry."""

DEFAULT_RATE_SHARE = 0.5
"""Share of the number's rate a campaign uses unless told: half, so replies to customers who
answer the campaign still find room."""

_NAMESPACE = uuid.UUID("5b3c2f2e-8a43-4c38-9a2e-4a8c1e6f0d11")
"""Namespace of the campaign messages' ids."""

# KEYS[1]: the campaign. ARGV[1]: the new state, ARGV[2]: the time, ARGV[3..]: the states it
# may move from. Returns 1 if it moved.
_TRANSITION = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return -1 end
for i = 3, #ARGV do
  if state == ARGV[i] then
    redis.call('HSET', KEYS[1], 'state', ARGV[1], 'updated_at', ARGV[2])
    if ARGV[1] == 'finished' or ARGV[1] == 'cancelled' then
      redis.call('HSET', KEYS[1], 'ended_at', ARGV[2])
    end
    return 1
  end
end
return 0
"""

# KEYS[1]: the campaign, KEYS[2]: the due set. ARGV[1]: the position the chunk started at,
# ARGV[2]: where it ended, ARGV[3]: the id, ARGV[4]: when the next chunk is due ('' if none).
# Returns 1 for the one run that moved the cursor: only it goes on, so a chunk run twice (a
# redelivery, a recovered task) never makes two chains of tasks.
_ADVANCE = """
if redis.call('HGET', KEYS[1], 'cursor') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'cursor', ARGV[2])
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
else
  redis.call('ZREM', KEYS[2], ARGV[3])
end
return 1
"""

RECOVERY_GRACE = 120.0
"""Seconds a running campaign's next chunk may be overdue before the sweep queues it again: past
any wait of a queue busy with the campaign's own sends."""


class CampaignRefused(DeliveryError):
    """A campaign the API refuses: ``code``, the ``field`` at fault and why."""

    def __init__(self, code: str, field: str, message: str):
        self.code = code
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class CampaignStateError(DeliveryError):
    """A pause, resume or cancel that the campaign's state does not allow."""


@dataclass(frozen=True)
class Campaign:
    """A campaign's definition and progress."""

    id: str
    name: str
    template: dict[str, str]
    category: str
    components: list[dict[str, Any]]
    phone_number_id: str
    rate_share: float
    schedule_at: float | None
    state: str
    total: int
    cursor: int
    created_at: float
    updated_at: float
    ended_at: float | None

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> Campaign:
        spec = json.loads(data["spec"])
        return cls(
            id=spec["id"],
            name=spec["name"],
            template=spec["template"],
            category=spec["category"],
            components=spec["components"],
            phone_number_id=spec["phone_number_id"],
            rate_share=spec["rate_share"],
            schedule_at=spec["schedule_at"],
            state=data["state"],
            total=int(data["total"]),
            cursor=int(data.get("cursor", 0)),
            created_at=float(data["created_at"]),
            updated_at=float(data.get("updated_at", data["created_at"])),
            ended_at=float(data["ended_at"]) if data.get("ended_at") else None,
        )


class CampaignStore:
    """Campaigns, their audiences and their counts, in Redis."""

    def __init__(self, redis_client: redis.Redis):
        self.redis = redis_client
        self._transition = redis_client.register_script(_TRANSITION)
        self._advance = redis_client.register_script(_ADVANCE)

    @staticmethod
    def key(campaign_id: str) -> str:
        return keys.CAMPAIGN.format(campaign_id=campaign_id)

    @staticmethod
    def audience_key(campaign_id: str) -> str:
        return keys.CAMPAIGN_AUDIENCE.format(campaign_id=campaign_id)

    @staticmethod
    def status_key(campaign_id: str, status: str) -> str:
        return keys.CAMPAIGN_STATUS.format(campaign_id=campaign_id, status=status)

    def create(self, campaign: Campaign, audience: Sequence[dict[str, Any]]) -> None:
        spec = {
            "id": campaign.id,
            "name": campaign.name,
            "template": campaign.template,
            "category": campaign.category,
            "components": campaign.components,
            "phone_number_id": campaign.phone_number_id,
            "rate_share": campaign.rate_share,
            "schedule_at": campaign.schedule_at,
        }
        key, audience_key = self.key(campaign.id), self.audience_key(campaign.id)
        pipe = self.redis.pipeline(transaction=True)
        for start in range(0, len(audience), 1000):
            pipe.rpush(audience_key, *(json.dumps(e) for e in audience[start : start + 1000]))
        pipe.expire(audience_key, keys.CAMPAIGN_TTL)
        pipe.hset(
            key,
            mapping={
                "spec": json.dumps(spec),
                "state": campaign.state,
                "total": campaign.total,
                "cursor": 0,
                "created_at": campaign.created_at,
                "updated_at": campaign.created_at,
            },
        )
        pipe.expire(key, keys.CAMPAIGN_TTL)
        pipe.zadd(keys.CAMPAIGNS, {campaign.id: campaign.created_at})
        if campaign.state == SCHEDULED:
            pipe.zadd(keys.CAMPAIGNS_SCHEDULED, {campaign.id: campaign.schedule_at})
        pipe.execute()

    def get(self, campaign_id: str) -> Campaign | None:
        data = self.redis.hgetall(self.key(campaign_id))
        return Campaign.from_hash(data) if data else None

    def transition(self, campaign_id: str, to: str, allowed_from: Sequence[str]) -> bool:
        """Move the campaign to ``to`` if it is in one of ``allowed_from``."""
        moved = self._transition(
            keys=[self.key(campaign_id)], args=[to, time.time(), *allowed_from]
        )
        return int(moved) == 1

    def advance(self, campaign_id: str, start: int, end: int, due: float | None) -> bool:
        """Move the cursor from ``start`` to ``end`` and note when the next chunk is due; False
        if another run of this chunk did it first."""
        moved = self._advance(
            keys=[self.key(campaign_id), keys.CAMPAIGNS_DUE],
            args=[start, end, campaign_id, "" if due is None else due],
        )
        return int(moved) == 1

    def counts(self, campaign_id: str) -> dict[str, int]:
        pipe = self.redis.pipeline(transaction=False)
        for status in COUNTED:
            pipe.scard(self.status_key(campaign_id, status))
        return dict(zip(COUNTED, pipe.execute(), strict=True))

    def pricing(self, campaign_id: str) -> dict[str, int]:
        data = self.redis.hgetall(self.key(campaign_id))
        return {
            field.removeprefix("pricing:"): int(value)
            for field, value in sorted(data.items())
            if field.startswith("pricing:")
        }

    def mark(self, campaign_id: str, status: str, positions: Sequence[int]) -> None:
        if positions:
            key = self.status_key(campaign_id, status)
            pipe = self.redis.pipeline(transaction=False)
            pipe.sadd(key, *positions)
            pipe.expire(key, keys.CAMPAIGN_TTL)
            pipe.execute()

    def to_dict(self, campaign: Campaign) -> dict[str, Any]:
        """The JSON shape the API returns."""
        return {
            "id": campaign.id,
            "name": campaign.name,
            "state": campaign.state,
            "template": campaign.template,
            "category": campaign.category,
            "phone_number_id": campaign.phone_number_id,
            "rate_share": campaign.rate_share,
            "schedule_at": _iso(campaign.schedule_at),
            "audience": campaign.total,
            "dispatched": campaign.cursor,
            "counts": self.counts(campaign.id),
            "pricing": self.pricing(campaign.id),
            "created_at": _iso(campaign.created_at),
            "ended_at": _iso(campaign.ended_at),
        }


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: Any, field: str) -> float:
    """An ISO 8601 time with its offset (``2026-12-01T09:00:00Z``) as a Unix time."""
    if not isinstance(value, str):
        raise CampaignRefused("invalid_campaign", field, "must be an ISO 8601 time with offset")
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CampaignRefused(
            "invalid_campaign", field, "must be an ISO 8601 time with offset"
        ) from None
    if moment.tzinfo is None:
        raise CampaignRefused("invalid_campaign", field, "needs a UTC offset, such as Z")
    return moment.timestamp()


def new_campaign(
    body: Any,
    *,
    default_number: str,
    templates: TemplateStore,
    is_registered: Callable[[str], bool],
    now: float | None = None,
) -> tuple[Campaign, list[dict[str, Any]]]:
    """Validate a ``POST /v1/campaigns`` body; the campaign and its audience. Raises
    :class:`CampaignRefused` (``invalid_campaign`` or ``template_invalid``). A recipient that
    is malformed is not refused here: it is counted ``invalid`` when its turn comes."""
    now = now if now is not None else time.time()
    if not isinstance(body, dict):
        raise CampaignRefused("invalid_campaign", "body", "must be a JSON object")
    template = body.get("template")
    if not isinstance(template, dict) or not isinstance(template.get("name"), str):
        raise CampaignRefused(
            "invalid_campaign", "template", "must be {name, language} of an approved template"
        )
    language = template.get("language")
    if not isinstance(language, str) or not language:
        raise CampaignRefused("invalid_campaign", "template.language", "must be a language code")
    kept = templates.get(template["name"], language)
    if kept is None or kept.status != APPROVED:
        state = "unknown (see 'wa-gateway templates sync')" if kept is None else kept.status
        raise CampaignRefused(
            "template_invalid", "template.name", f"the template is {state}, not APPROVED"
        )
    components = body.get("components", [])
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        raise CampaignRefused("invalid_campaign", "components", "must be a list of components")
    if any(str(c.get("type", "")).lower() == "body" for c in components):
        raise CampaignRefused(
            "invalid_campaign", "components", "body parameters go in each recipient's parameters"
        )
    number = body.get("phone_number_id", default_number)
    if not is_phone_number_id(number) or (number != default_number and not is_registered(number)):
        raise CampaignRefused(
            "invalid_campaign", "phone_number_id", "is not a sending number of this gateway"
        )
    share = body.get("rate_share", DEFAULT_RATE_SHARE)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
        raise CampaignRefused("invalid_campaign", "rate_share", "must be above 0 and at most 1")
    schedule_at = None
    if body.get("schedule_at") is not None:
        schedule_at = parse_time(body["schedule_at"], "schedule_at")
    audience = body.get("audience")
    if not isinstance(audience, list) or not audience:
        raise CampaignRefused("invalid_campaign", "audience", "must be a non-empty list")
    if len(audience) > MAX_AUDIENCE:
        raise CampaignRefused(
            "invalid_campaign", "audience", f"must hold at most {MAX_AUDIENCE} recipients"
        )
    name = body.get("name", "")
    if not isinstance(name, str) or len(name) > 200:
        raise CampaignRefused("invalid_campaign", "name", "must be a string of 200 characters")
    campaign = Campaign(
        id=uuid.uuid4().hex,
        name=name,
        template={"name": kept.name, "language": kept.language},
        category=kept.category,
        components=components,
        phone_number_id=number,
        rate_share=float(share),
        schedule_at=schedule_at,
        state=SCHEDULED if schedule_at is not None and schedule_at > now else RUNNING,
        total=len(audience),
        cursor=0,
        created_at=now,
        updated_at=now,
        ended_at=None,
    )
    return campaign, audience


def message_id(campaign_id: str, position: int) -> str:
    """The id of the message to the recipient at ``position``: the same in every run."""
    return uuid.uuid5(_NAMESPACE, f"{campaign_id}:{position}").hex


def message_for(campaign: Campaign, entry: Any) -> dict[str, Any]:
    """The send API body of one recipient (checked by the intake like any other)."""
    if not isinstance(entry, dict):
        raise intake.Refused("invalid_message", "audience", "must be an object")
    parameters = entry.get("parameters", [])
    if not isinstance(parameters, list) or len(parameters) > MAX_PARAMETERS:
        raise intake.Refused(
            "invalid_message", "parameters", f"must be a list of at most {MAX_PARAMETERS}"
        )
    components = list(campaign.components)
    if parameters:
        components.append(
            {"type": "body", "parameters": [{"type": "text", "text": p} for p in parameters]}
        )
    template: dict[str, Any] = {
        "name": campaign.template["name"],
        "language": {"code": campaign.template["language"]},
    }
    if components:
        template["components"] = components
    address = {k: entry[k] for k in ("to", "recipient") if k in entry}
    if not address:
        raise intake.Refused("invalid_message", "to", "a recipient needs to or recipient")
    return {
        "messaging_product": "whatsapp",
        **address,
        "type": "template",
        "template": template,
        "priority": "bulk",
        "phone_number_id": campaign.phone_number_id,
    }


@dataclass(frozen=True)
class Chunk:
    """What one dispatch did, and when the next is due (None: nothing more to dispatch)."""

    queued: int
    skipped: dict[str, int]
    next_in: float | None
    next_position: int = 0


def dispatch_chunk(
    redis_client: redis.Redis,
    campaign_id: str,
    position: int,
    *,
    rate: Callable[[str], float],
    enqueue_all: intake.EnqueueAll,
    chunk_size: int = CHUNK_SIZE,
) -> Chunk:
    """Hand out the chunk of recipients from ``position`` on; ``rate`` is a number's messages per
    second. A task for a chunk already handed out (a stale or repeated one) does nothing, so a
    campaign has one chain of tasks; a chunk run twice at once queues nothing twice (ids are
    derived, records made once) and only one of the runs goes on."""
    campaigns = CampaignStore(redis_client)
    campaign = campaigns.get(campaign_id)
    if campaign is None or campaign.state != RUNNING or campaign.cursor != position:
        return Chunk(0, {}, None)
    start = position
    entries = redis_client.lrange(
        campaigns.audience_key(campaign_id), start, start + chunk_size - 1
    )
    store = MessageStore(redis_client)
    windows, customers = CustomerWindows(redis_client), CustomerBook(redis_client)
    templates, opt_outs = TemplateStore(redis_client), OptOutBook(redis_client)
    submissions: list[tuple[int, intake.Submission]] = []
    skipped: dict[str, list[int]] = {OPTED_OUT: [], INVALID: []}
    for offset, raw in enumerate(entries):
        position = start + offset
        try:
            submission = intake.prepare(
                message_for(campaign, json.loads(raw)),
                phone_number_id=campaign.phone_number_id,
                windows=windows,
                fallback=None,
                is_registered=lambda _number: True,  # checked when the campaign was made
                customers=customers,
                templates=templates,
                opt_outs=opt_outs,
            )
        except intake.Refused as refused:
            skipped[OPTED_OUT if refused.code == "opted_out" else INVALID].append(position)
            continue
        submissions.append((position, submission))
    ids = [message_id(campaign_id, position) for position, _ in submissions]
    pipe = redis_client.pipeline(transaction=False)
    for mid in ids:
        pipe.exists(store.key(mid))
    fresh = [
        (mid, position, s)
        for mid, (position, s), exists in zip(ids, submissions, pipe.execute(), strict=True)
        if not exists
    ]
    if fresh:
        store.create_many(
            [
                NewMessage(
                    mid, s.message, s.priority, None, {"campaign": campaign_id}, s.phone_number_id
                )
                for mid, _, s in fresh
            ]
        )
        pipe = redis_client.pipeline(transaction=False)
        for mid, position, _ in fresh:
            pipe.set(
                keys.CAMPAIGN_OF_MESSAGE.format(message_id=mid),
                f"{campaign_id}:{position}",
                ex=keys.MESSAGE_TTL,
            )
        pipe.execute()
        enqueue_all([(mid, s.priority) for mid, _, s in fresh])
    campaigns.mark(campaign_id, QUEUED, [position for position, _ in submissions])
    for status, positions in skipped.items():
        campaigns.mark(campaign_id, status, positions)
    end = start + len(entries)
    counts = {status: len(positions) for status, positions in skipped.items()}
    last = end >= campaign.total
    next_in = (
        None if last else len(entries) / (campaign.rate_share * rate(campaign.phone_number_id))
    )
    if not campaigns.advance(campaign_id, start, end, None if last else time.time() + next_in):
        return Chunk(len(fresh), counts, None)  # another run of this chunk goes on
    if last:
        finished(campaigns, campaign_id)
    return Chunk(len(fresh), counts, next_in, end)


def finished(campaigns: CampaignStore, campaign_id: str) -> bool:
    """The campaign has handed out its whole audience: record it ``finished``. Runs its body
    once per campaign (the state moves from ``running`` once); True for that one run."""
    if not campaigns.transition(campaign_id, FINISHED, (RUNNING,)):
        return False
    log.info("campaign %s finished", campaign_id)

    def data() -> dict[str, Any]:
        return campaigns.to_dict(campaigns.get(campaign_id))

    # Its counts as they stand: statuses keep arriving after the whole audience is handed out.
    emit(campaigns.redis, CAMPAIGN_FINISHED, data, key=f"campaign:{campaign_id}")
    return True


EnqueueDispatch = Callable[[str, int], None]
"""Queues the dispatch of a campaign's chunk starting at a position."""


def start_due(
    redis_client: redis.Redis, enqueue_dispatch: EnqueueDispatch, now: float | None = None
) -> list[str]:
    """Start the scheduled campaigns whose time has come; whoever takes one off the schedule
    starts it, so two runs at once start each once. Returns their ids. Also queues again the
    next chunk of a running campaign long overdue (:data:`RECOVERY_GRACE`)."""
    campaigns = CampaignStore(redis_client)
    now = now if now is not None else time.time()
    started = []
    for campaign_id in redis_client.zrangebyscore(keys.CAMPAIGNS_DUE, "-inf", now - RECOVERY_GRACE):
        # Its next dispatch task is long overdue: the broker lost it. Queued again; a run that
        # finds the chunk done by the lost one, found after all, stops there.
        campaign = campaigns.get(campaign_id)
        redis_client.zadd(keys.CAMPAIGNS_DUE, {campaign_id: now})
        if campaign is not None and campaign.state == RUNNING:
            log.warning("campaign %s: its next chunk is overdue; queued again", campaign_id)
            enqueue_dispatch(campaign_id, campaign.cursor)
    for campaign_id in redis_client.zrangebyscore(keys.CAMPAIGNS_SCHEDULED, "-inf", now):
        if not redis_client.zrem(keys.CAMPAIGNS_SCHEDULED, campaign_id):
            continue  # another run took it
        if campaigns.transition(campaign_id, RUNNING, (SCHEDULED,)):
            try:
                enqueue_dispatch(campaign_id, 0)
            except Exception:
                # The broker refused: back on the schedule, for the next run to start.
                campaigns.transition(campaign_id, SCHEDULED, (RUNNING,))
                redis_client.zadd(keys.CAMPAIGNS_SCHEDULED, {campaign_id: now})
                raise
            started.append(campaign_id)
    return started


def pause(campaigns: CampaignStore, campaign_id: str) -> None:
    if not campaigns.transition(campaign_id, PAUSED, (RUNNING, SCHEDULED)):
        raise CampaignStateError("only a running or scheduled campaign can be paused")
    campaigns.redis.zrem(keys.CAMPAIGNS_SCHEDULED, campaign_id)
    campaigns.redis.zrem(keys.CAMPAIGNS_DUE, campaign_id)


def resume(campaigns: CampaignStore, campaign_id: str, enqueue_dispatch: EnqueueDispatch) -> None:
    """Run a paused campaign again from where it stopped (at once, even if it was paused while
    still scheduled)."""
    if not campaigns.transition(campaign_id, RUNNING, (PAUSED,)):
        raise CampaignStateError("only a paused campaign can be resumed")
    campaign = campaigns.get(campaign_id)
    enqueue_dispatch(campaign_id, campaign.cursor if campaign else 0)


def cancel(campaigns: CampaignStore, campaign_id: str) -> None:
    if not campaigns.transition(campaign_id, CANCELLED, (RUNNING, SCHEDULED, PAUSED)):
        raise CampaignStateError("a finished or cancelled campaign cannot be cancelled")
    campaigns.redis.zrem(keys.CAMPAIGNS_SCHEDULED, campaign_id)
    campaigns.redis.zrem(keys.CAMPAIGNS_DUE, campaign_id)


def count_status(
    redis_client: redis.Redis, message_id: str, status: str, pricing_category: str | None
) -> bool:
    """Count a status webhook of a message in its campaign, if it belongs to one."""
    owner = redis_client.get(keys.CAMPAIGN_OF_MESSAGE.format(message_id=message_id))
    return count_campaign_status(redis_client, owner, status, pricing_category)


def count_campaign_status(
    redis_client: redis.Redis, owner: str | None, status: str, pricing_category: str | None
) -> bool:
    """:func:`count_status` for a message whose campaign entry (``keys.CAMPAIGN_OF_MESSAGE``:
    ``owner``, None when it has none) the caller has read already."""
    if not owner:
        return False
    campaign_id, _, position = owner.rpartition(":")
    campaigns = CampaignStore(redis_client)
    for reached in _REACHED.get(status, ()):
        campaigns.mark(campaign_id, reached, [int(position)])
    priced = campaigns.status_key(campaign_id, PRICED)
    if pricing_category and redis_client.sadd(priced, position):
        redis_client.expire(priced, keys.CAMPAIGN_TTL)
        redis_client.hincrby(campaigns.key(campaign_id), f"pricing:{pricing_category}", 1)
    return True
