"""``/v1/campaigns``: a template sent to an audience on the bulk lane (see :mod:`app.campaigns`).

- ``POST /v1/campaigns``: ``template`` ({name, language}, approved), ``audience`` (each a ``to``
  phone or ``recipient`` BSUID with its body ``parameters``), optional ``components`` shared by
  all (a header image, a button), ``schedule_at``, ``rate_share``, ``phone_number_id``, ``name``;
  201 with the campaign.
- ``GET /v1/campaigns/<id>``: state, counts per status and per pricing category.
- ``POST /v1/campaigns/<id>/pause``, ``/resume``, ``/cancel``: 409 ``invalid_state`` when its
  state does not allow it.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from app import campaigns as c
from app.credentials import is_registered
from app.db import get_redis
from app.errors import ApiError
from app.templates import TemplateStore
from app.web.auth import require_number, requires
from app.web.messages import json_body
from tasks.enqueue import enqueue_dispatch_campaign

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")

MAX_CAMPAIGN_BYTES = 32 * 1024 * 1024
"""Largest body of ``POST /v1/campaigns``: 100,000 recipients of a few hundred bytes each."""


def _store() -> c.CampaignStore:
    return c.CampaignStore(get_redis(current_app.config["SETTINGS"].redis_url))


def _campaign(store: c.CampaignStore, campaign_id: str) -> c.Campaign:
    campaign = store.get(campaign_id)
    if campaign is None:
        raise ApiError(404, "not_found", "no campaign with this id")
    require_number(campaign.phone_number_id)
    return campaign


@bp.post("")
@requires("send")
def create_campaign():
    """Accept a campaign: 201 once stored and, unless scheduled, its first chunk queued."""
    settings = current_app.config["SETTINGS"]
    redis_client = get_redis(settings.redis_url)
    body = json_body(MAX_CAMPAIGN_BYTES)
    try:
        campaign, audience = c.new_campaign(
            body,
            default_number=settings.phone_number_id,
            templates=TemplateStore(redis_client),
            is_registered=lambda number: is_registered(redis_client, number),
        )
    except c.CampaignRefused as refused:
        raise ApiError(422, refused.code, refused.message, field=refused.field) from None
    require_number(campaign.phone_number_id)
    store = c.CampaignStore(redis_client)
    store.create(campaign, audience)
    if campaign.state == c.RUNNING:
        try:
            enqueue_dispatch_campaign(campaign.id, 0)
        except Exception:
            # The client is told it failed: nothing it cannot find again may stay.
            store.transition(campaign.id, c.CANCELLED, (c.RUNNING,))
            raise
    response = jsonify(store.to_dict(store.get(campaign.id)))
    response.status_code = 201
    return response


@bp.get("/<campaign_id>")
@requires("read")
def show_campaign(campaign_id: str):
    """The campaign's state, counts per status and per pricing category."""
    store = _store()
    return jsonify(store.to_dict(_campaign(store, campaign_id)))


def _change(campaign_id: str, change) -> dict:
    store = _store()
    _campaign(store, campaign_id)
    try:
        change(store, campaign_id)
    except c.CampaignStateError as exc:
        raise ApiError(409, "invalid_state", str(exc)) from None
    return jsonify(store.to_dict(store.get(campaign_id)))


@bp.post("/<campaign_id>/pause")
@requires("send")
def pause_campaign(campaign_id: str):
    """Stop handing out the audience; what is queued already (a chunk at most) is still sent."""
    return _change(campaign_id, c.pause)


@bp.post("/<campaign_id>/resume")
@requires("send")
def resume_campaign(campaign_id: str):
    """Go on from where the campaign was paused."""
    return _change(campaign_id, lambda store, cid: c.resume(store, cid, enqueue_dispatch_campaign))


@bp.post("/<campaign_id>/cancel")
@requires("send")
def cancel_campaign(campaign_id: str):
    """Stop for good; counts stay readable."""
    return _change(campaign_id, c.cancel)
