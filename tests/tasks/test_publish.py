"""The direct publisher writes exactly the envelope kombu's Redis transport writes."""

from __future__ import annotations

import base64
import json

import workers
from tasks.inbound import process_webhook
from tasks.publish import TaskPublisher


def test_envelope_matches_kombus_own(redis_client):
    payload = {"object": "whatsapp_business_account", "entry": []}
    process_webhook.apply_async(args=[payload], retry=False, argsrepr="<webhook>")
    theirs = json.loads(redis_client.rpop("inbound"))
    publisher = TaskPublisher(workers.app, redis_client)
    assert publisher.publish_once(
        process_webhook.name,
        [payload],
        queue="inbound",
        dedup_key="wa:test:mark",
        dedup_ttl=60,
        argsrepr="<webhook>",
    )
    ours = json.loads(redis_client.rpop("inbound"))
    assert set(ours) == set(theirs)
    assert {k: v for k, v in ours.items() if k not in ("body", "headers", "properties")} == {
        k: v for k, v in theirs.items() if k not in ("body", "headers", "properties")
    }
    assert base64.b64decode(ours["body"]) == base64.b64decode(theirs["body"])
    varying = {"id", "root_id", "origin"}
    assert {k: v for k, v in ours["headers"].items() if k not in varying} == {
        k: v for k, v in theirs["headers"].items() if k not in varying
    }
    # apply_async also copies its own options (argsrepr) into the properties; workers ignore them.
    assert set(ours["properties"]) == set(theirs["properties"]) - {"argsrepr"}
    for key in ("delivery_mode", "delivery_info", "priority", "body_encoding"):
        assert ours["properties"][key] == theirs["properties"][key]


def test_mark_and_message_go_together(redis_client):
    publisher = TaskPublisher(workers.app, redis_client)
    args = dict(queue="inbound", dedup_key="wa:test:mark", dedup_ttl=60, argsrepr="x")
    assert publisher.publish_once(process_webhook.name, [{}], **args)
    assert not publisher.publish_once(process_webhook.name, [{}], **args)
    assert redis_client.llen("inbound") == 1
    assert 0 < redis_client.ttl("wa:test:mark") <= 60
