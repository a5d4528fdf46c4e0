"""Campaigns as plain functions: validation, chunked dispatch through the send API's checks,
skipped recipients counted, idempotent counts of statuses and pricing, the state machine, and
the start of scheduled campaigns."""

from __future__ import annotations

import time

import pytest

from app import campaigns as c
from app.conversations.optout import API, OptOutBook
from app.delivery.messages import MessageStore
from app.templates import Template, TemplateStore
from tests.stack import TEST_CREDENTIALS

pytestmark = pytest.mark.any_redis

NUMBER = TEST_CREDENTIALS["WHATSAPP_PHONE_NUMBER_ID"]
PROMO = Template(
    id="1",
    name="promo",
    language="es",
    status="APPROVED",
    category="MARKETING",
    components=[{"type": "BODY", "text": "Hola {{1}}, usa {{2}}"}],
)


@pytest.fixture
def templates(redis_client):
    store = TemplateStore(redis_client)
    store.replace_all(
        [PROMO, Template(**{**PROMO.to_dict(), "name": "draft", "status": "PENDING"})]
    )
    return store


def body(audience, **extra):
    return {"template": {"name": "promo", "language": "es"}, "audience": audience, **extra}


def create(redis_client, templates, audience, now=1000.0, **extra):
    campaign, entries = c.new_campaign(
        body(audience, **extra),
        default_number=NUMBER,
        templates=templates,
        is_registered=lambda number: False,
        now=now,
    )
    store = c.CampaignStore(redis_client)
    store.create(campaign, entries)
    return store, campaign


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"template": {"name": "draft", "language": "es"}}, "template_invalid", "template.name"),
        ({"template": {"name": "nope", "language": "es"}}, "template_invalid", "template.name"),
        ({"template": {"name": "promo"}}, "invalid_campaign", "template.language"),
        ({"audience": []}, "invalid_campaign", "audience"),
        ({"audience": "573001112233"}, "invalid_campaign", "audience"),
        ({"rate_share": 0}, "invalid_campaign", "rate_share"),
        ({"rate_share": 1.5}, "invalid_campaign", "rate_share"),
        ({"rate_share": True}, "invalid_campaign", "rate_share"),
        ({"schedule_at": "2026-12-01 09:00"}, "invalid_campaign", "schedule_at"),
        ({"schedule_at": "mañana"}, "invalid_campaign", "schedule_at"),
        ({"phone_number_id": "106540352240000"}, "invalid_campaign", "phone_number_id"),
        ({"components": [{"type": "body", "parameters": []}]}, "invalid_campaign", "components"),
    ],
)
def test_a_bad_campaign_is_refused_naming_its_field(templates, change, code, field):
    with pytest.raises(c.CampaignRefused) as refused:
        c.new_campaign(
            {**body([{"to": "573001112233"}]), **change},
            default_number=NUMBER,
            templates=templates,
            is_registered=lambda number: False,
        )
    assert (refused.value.code, refused.value.field) == (code, field)


def test_an_audience_is_handed_out_in_chunks_at_its_share_of_the_rate(redis_client, templates):
    OptOutBook(redis_client).opt_out(NUMBER, "573001110002", API)
    audience = [{"to": f"57300111{n:04d}", "parameters": ["Ana", "X1"]} for n in range(5)]
    audience[3] = {"to": "12", "parameters": ["Ana", "X1"]}  # no phone number
    audience[4] = {"to": "573001110004", "parameters": ["Ana"]}  # one parameter short
    store, campaign = create(redis_client, templates, audience, rate_share=0.5)
    queued: list = []
    first = c.dispatch_chunk(
        redis_client, campaign.id, 0, rate=lambda n: 80.0, enqueue_all=queued.extend, chunk_size=2
    )
    assert (first.queued, first.next_in) == (2, 2 / 40.0)
    second = c.dispatch_chunk(
        redis_client,
        campaign.id,
        first.next_position,
        rate=lambda n: 80.0,
        enqueue_all=queued.extend,
        chunk_size=2,
    )
    assert second.skipped == {"opted_out": 1, "invalid": 1}
    third = c.dispatch_chunk(
        redis_client,
        campaign.id,
        second.next_position,
        rate=lambda n: 80.0,
        enqueue_all=queued.extend,
        chunk_size=2,
    )
    assert third.next_in is None
    assert [lane for _, lane in queued] == ["bulk"] * 2
    assert store.get(campaign.id).state == c.FINISHED
    counts = store.counts(campaign.id)
    assert (counts["queued"], counts["opted_out"], counts["invalid"]) == (2, 1, 2)
    message = MessageStore(redis_client).get(queued[0][0])
    assert message.payload["template"]["components"][0]["parameters"][0]["text"] == "Ana"
    # A finished campaign hands out nothing more, and is finished once.
    assert (
        c.dispatch_chunk(
            redis_client, campaign.id, 5, rate=lambda n: 80.0, enqueue_all=queued.extend
        ).next_in
        is None
    )
    assert not c.finished(store, campaign.id)


def test_a_chunk_run_twice_queues_nothing_twice(redis_client, templates):
    audience = [{"to": f"57300122{n:04d}", "parameters": ["a", "b"]} for n in range(3)]
    store, campaign = create(redis_client, templates, audience)
    queued: list = []
    first = c.dispatch_chunk(
        redis_client, campaign.id, 0, rate=lambda n: 80.0, enqueue_all=queued.extend, chunk_size=2
    )
    # The same task again, or a stale one: nothing, and no second chain.
    again = c.dispatch_chunk(
        redis_client, campaign.id, 0, rate=lambda n: 80.0, enqueue_all=queued.extend, chunk_size=2
    )
    assert (first.next_position, again.next_in, len(queued)) == (2, None, 2)
    # Two runs of one chunk at once (the cursor read by both): records and sends made once,
    # and only the run that moves the cursor goes on.
    runs = [
        c.dispatch_chunk(
            redis_client, campaign.id, 2, rate=lambda n: 80.0, enqueue_all=queued.extend
        )
    ]
    store.redis.hset(store.key(campaign.id), mapping={"cursor": 2, "state": c.RUNNING})
    runs.append(
        c.dispatch_chunk(
            redis_client, campaign.id, 2, rate=lambda n: 80.0, enqueue_all=queued.extend
        )
    )
    assert len(queued) == 3 and store.counts(campaign.id)["queued"] == 3


def test_statuses_and_pricing_count_once_per_recipient(redis_client, templates):
    store, campaign = create(
        redis_client, templates, [{"to": "573001330000", "parameters": ["a", "b"]}]
    )
    queued: list = []
    c.dispatch_chunk(redis_client, campaign.id, 0, rate=lambda n: 80.0, enqueue_all=queued.extend)
    ((message_id, _),) = queued
    for status, category in [
        ("sent", "marketing"),
        ("read", None),
        ("delivered", "marketing"),
        ("read", None),
    ]:
        assert c.count_status(redis_client, message_id, status, category)
    assert not c.count_status(redis_client, "another-message", "sent", "marketing")
    counts = store.counts(campaign.id)
    assert (counts["sent"], counts["delivered"], counts["read"], counts["failed"]) == (1, 1, 1, 0)
    assert store.pricing(campaign.id) == {"marketing": 1}


def test_pause_resume_and_cancel_follow_the_states(redis_client, templates):
    store, campaign = create(
        redis_client, templates, [{"to": "573001440000", "parameters": ["a", "b"]}]
    )
    dispatched: list = []
    c.pause(store, campaign.id)
    assert (
        c.dispatch_chunk(
            redis_client, campaign.id, 0, rate=lambda n: 1.0, enqueue_all=dispatched.extend
        ).queued
        == 0
    )
    with pytest.raises(c.CampaignStateError):
        c.pause(store, campaign.id)
    c.resume(store, campaign.id, lambda *task: dispatched.append(task))
    assert dispatched == [(campaign.id, 0)]
    c.cancel(store, campaign.id)
    assert store.get(campaign.id).ended_at is not None
    for change in (c.cancel, c.pause, lambda s, i: c.resume(s, i, lambda *task: None)):
        with pytest.raises(c.CampaignStateError):
            change(store, campaign.id)


def test_a_scheduled_campaign_starts_once_when_due(redis_client, templates):
    store, campaign = create(
        redis_client,
        templates,
        [{"to": "573001550000", "parameters": ["a", "b"]}],
        now=1000.0,
        schedule_at="2026-12-01T09:00:00-05:00",
    )
    assert campaign.state == c.SCHEDULED
    due = campaign.schedule_at
    started: list = []

    def enqueue(campaign_id, position):
        started.append((campaign_id, position))

    assert c.start_due(redis_client, enqueue, now=due - 1) == []
    assert c.start_due(redis_client, enqueue, now=due) == [campaign.id]
    assert c.start_due(redis_client, enqueue, now=due + 5) == []
    assert started == [(campaign.id, 0)] and store.get(campaign.id).state == c.RUNNING


def test_a_campaign_the_broker_could_not_start_stays_scheduled(redis_client, templates):
    store, campaign = create(
        redis_client,
        templates,
        [{"to": "573001660000", "parameters": ["a", "b"]}],
        now=1000.0,
        schedule_at="2026-12-01T09:00:00Z",
    )

    def broker_down(campaign_id, position):
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        c.start_due(redis_client, broker_down, now=campaign.schedule_at)
    assert store.get(campaign.id).state == c.SCHEDULED
    assert c.start_due(redis_client, lambda *task: None, now=campaign.schedule_at) == [campaign.id]


def test_a_chunk_whose_task_the_broker_lost_is_queued_again(redis_client, templates):
    audience = [{"to": f"57300177{n:04d}", "parameters": ["a", "b"]} for n in range(3)]
    store, campaign = create(redis_client, templates, audience)
    first = c.dispatch_chunk(
        redis_client,
        campaign.id,
        0,
        rate=lambda n: 1.0,
        enqueue_all=lambda pairs: None,
        chunk_size=2,
    )
    due = time.time() + first.next_in
    requeued: list = []

    def enqueue(campaign_id, position):
        requeued.append((campaign_id, position))

    c.start_due(redis_client, enqueue, now=due + c.RECOVERY_GRACE - 1)
    assert requeued == []
    c.start_due(redis_client, enqueue, now=due + c.RECOVERY_GRACE + 1)
    assert requeued == [(campaign.id, 2)]
    c.pause(store, campaign.id)  # a paused campaign is not overdue
    c.start_due(redis_client, enqueue, now=due + 10 * c.RECOVERY_GRACE)
    assert requeued == [(campaign.id, 2)]


@pytest.mark.real_redis(reason="the event is queued through the broker, on the real server")
def test_a_finished_campaign_is_announced_once_with_its_figures(redis_client, templates):
    import celeryconfig
    from app.credentials import generate_key, load_cipher
    from app.events.subscriptions import CAMPAIGN_FINISHED, SubscriptionStore
    from tests.stack import queued_tasks

    subscription, _ = SubscriptionStore(redis_client, load_cipher(generate_key())).create(
        "https://a.example.com/", [CAMPAIGN_FINISHED]
    )
    audience = [{"to": "573001110001", "parameters": ["Ana", "X1"]}]
    store, campaign = create(redis_client, templates, audience)
    done = c.dispatch_chunk(
        redis_client, campaign.id, 0, rate=lambda n: 80.0, enqueue_all=lambda items: None
    )
    assert done.next_in is None and store.get(campaign.id).state == c.FINISHED
    assert not c.finished(store, campaign.id)  # finished once: announced once

    ((name, (to, event), _),) = queued_tasks(redis_client, celeryconfig.QUEUE_EVENTS)
    assert (name, to, event["type"]) == ("events.deliver_event", subscription.id, CAMPAIGN_FINISHED)
    assert event["data"]["id"] == campaign.id
    assert event["data"]["state"] == c.FINISHED
    assert event["data"]["counts"]["queued"] == 1
