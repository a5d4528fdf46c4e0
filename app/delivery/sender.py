"""Sending one recorded message through the Graph API, at most once in effect."""

from __future__ import annotations

import logging
from enum import StrEnum

from app.delivery.messages import DEAD_LETTERED, FAILED, MessageStore
from app.whatsapp.client import GraphClient

log = logging.getLogger(__name__)


class SendOutcome(StrEnum):
    """What :func:`send_recorded_message` did."""

    SENT = "sent"
    ALREADY_SENT = "already_sent"
    FINISHED = "finished"
    MISSING = "missing"


def send_recorded_message(store: MessageStore, client: GraphClient, message_id: str) -> SendOutcome:
    """Send the message ``message_id`` unless Meta already accepted it.

    Meta's ``wamid`` is recorded before the task acknowledges, and checked here before sending, so a
    redelivered task does not send again. The one window left for a duplicate is between Meta's
    answer and that record (a crash in those microseconds). Graph errors propagate to the caller,
    which owns the retry policy.
    """
    record = store.get(message_id)
    if record is None:
        log.warning("message %s has no record; nothing to send", message_id)
        return SendOutcome.MISSING
    if record.wamid:
        return SendOutcome.ALREADY_SENT
    if record.status in (FAILED, DEAD_LETTERED):
        return SendOutcome.FINISHED
    attempt = store.mark_sending(message_id)
    result = client.send_message(record.payload)
    store.record_wamid(message_id, result.wamid)
    log.info("message %s accepted by Meta as %s (attempt %d)", message_id, result.wamid, attempt)
    return SendOutcome.SENT
