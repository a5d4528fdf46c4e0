"""Campaign tasks, on the bulk lane: hand out one chunk of a campaign's audience, and start the
scheduled campaigns whose time has come (run by beat)."""

from __future__ import annotations

from celery import shared_task

from app import campaigns
from app.config import get_settings
from app.db import get_redis
from tasks.base import GatewayTask, bounded_countdown
from tasks.enqueue import enqueue_dispatch_campaign, enqueue_sends


def number_rate(phone_number_id: str) -> float:
    """The sending number's messages per second (``SEND_RATE_LIMITS``, else ``SEND_RATE_LIMIT``)."""
    settings = get_settings()
    return settings.send_rate_limits.get(phone_number_id, settings.send_rate_limit)


@shared_task(base=GatewayTask, name="campaigns.dispatch_campaign", ignore_result=True)
def dispatch_campaign(campaign_id: str, position: int) -> dict:
    """Queue the sends of the campaign's chunk from ``position``; queue the next when it is due."""
    chunk = campaigns.dispatch_chunk(
        get_redis(get_settings().redis_url),
        campaign_id,
        position,
        rate=number_rate,
        enqueue_all=enqueue_sends,
    )
    if chunk.next_in is not None:
        enqueue_dispatch_campaign(
            campaign_id, chunk.next_position, countdown=bounded_countdown(chunk.next_in)
        )
    return {"queued": chunk.queued, "skipped": chunk.skipped}


@shared_task(base=GatewayTask, name="campaigns.start_due", ignore_result=True)
def start_due() -> list[str]:
    """Start every scheduled campaign whose ``schedule_at`` has passed."""
    return campaigns.start_due(get_redis(get_settings().redis_url), enqueue_dispatch_campaign)
