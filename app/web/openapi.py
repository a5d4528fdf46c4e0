"""``GET /openapi.json``: the gateway's own ``/v1`` API in OpenAPI 3.1.

The description is kept beside the views it describes. Every object in an answer lists its
properties, or says with ``additionalProperties`` that it is open (Meta's message and error
objects, history notes, counters by name); the tests check that every ``/v1`` route is described,
that real answers carry no property the document lacks, and that each documented property appears
in some real answer.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from app import __version__
from app.api_keys import ADMIN, DEAD_LETTERS, READ, SCOPES, SEND
from app.campaigns import COUNTED, MAX_AUDIENCE, STATES
from app.conversations.context import BUSINESS, CUSTOMER
from app.conversations.handoff import BY_CUSTOMER, BY_OPERATOR
from app.conversations.optout import SOURCES
from app.delivery.dead_letters import DIRECTIONS, KINDS, REASONS
from app.delivery.idempotency import MAX_KEY_LENGTH
from app.delivery.intake import MAX_BATCH, PRIORITIES
from app.delivery.messages import STATUS_RANK
from app.events.subscriptions import EVENT_TYPES
from app.ops.alerts import CRITICAL, FIRING, RESOLVED, WARNING

bp = Blueprint("openapi", __name__)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _needs(scope: str) -> list[dict[str, list[str]]]:
    """An operation's ``security``: a bearer key holding ``scope`` (or ``admin``)."""
    return [{"apiKey": [scope]}]


def _guarded(*, per_number: bool = False) -> dict[str, Any]:
    """What any /v1 operation may answer: authentication and its scope come first, and they read
    Redis. ``per_number``: the operation acts for a sending number, which a key may not use."""
    refused = "the API key lacks this operation's scope (`insufficient_scope`)"
    if per_number:
        refused += ", or may not use its sending number (`number_not_allowed`)"
    return {
        "401": _error("missing or invalid API key"),
        "403": _error(refused),
        "503": _error(
            "Redis is unavailable (`redis_unavailable`), or no replica confirmed a write in time "
            "(`replication_timeout`); retry after `Retry-After` seconds"
        ),
    }


_NOT_FOUND = {"404": _error("no such message or dead letter")}

_QUEUE_FULL = {
    **_error(
        "`queue_full`: the message's lane of its sending number holds its cap of messages "
        "(`SEND_QUEUE_CAPS`; bulk 100,000 by default); nothing was accepted, retry after "
        "`Retry-After` seconds"
    ),
    "headers": {
        "Retry-After": {
            "description": "seconds until that many messages have drained at the number's rate",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}

_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Makes the request safe to repeat: the same key and body return the same ids "
    "and enqueue nothing; the same key with another body is 409.",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
}
_MESSAGE_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_USER_ID_PATTERN = r"^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}$"
_WA_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "the customer's phone number (digits only) or business-scoped user id "
    "(`US.13491208655302741918`, or a parent one, `US.ENT.11815799212886844830`): either finds "
    "the one conversation",
    "schema": {
        "anyOf": [{"pattern": "^[0-9]{5,20}$"}, {"pattern": _USER_ID_PATTERN}],
        "type": "string",
    },
}
_NULLABLE_STRING = {"type": ["string", "null"]}
_CUSTOMER_IDS = {
    "wa_id": {
        **_NULLABLE_STRING,
        "description": "the customer's phone number; null when Meta withholds it",
    },
    "customer": _ref("Customer"),
}
_HANDOFF = _json(
    {
        "type": "object",
        "required": ["wa_id", "customer", "handoff"],
        "properties": {**_CUSTOMER_IDS, "handoff": _ref("Handoff")},
    },
    "the conversation's handoff state",
)
_OPEN = {"type": "object", "additionalProperties": True}
"""An object whose fields the gateway passes through or varies by event."""
_NULLABLE_NUMBER = {"type": ["number", "null"]}
_COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}
"""Counts by name."""
_GRAPH_ERROR = {
    **_OPEN,
    "type": ["object", "null"],
    "description": "the last error: Graph `code`, `title`, `message`, `details`",
}

_DEAD_LETTER_KIND = {
    "enum": [*KINDS, None],
    "description": "inbound: what was dead-lettered; `event` for an event (null for outbound)",
}
_SUBSCRIPTION_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_SUBSCRIPTION_PROPERTIES = {
    "id": {"type": "string", "examples": ["sub_3f2a..."]},
    "url": {"type": "string", "format": "uri"},
    "events": {"type": "array", "items": {"enum": list(EVENT_TYPES)}},
    "created_at": {"type": "number"},
    "description": _NULLABLE_STRING,
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "examples": ["invalid_message", "window_closed"]},
                    "message": {"type": "string"},
                    "field": {"type": "string", "description": "the field at fault"},
                    "errors": {
                        "type": "array",
                        "description": "per message, for a batch",
                        "items": {
                            "type": "object",
                            "properties": {
                                "index": {"type": "integer"},
                                "code": {"type": "string"},
                                "field": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        },
                    },
                },
            }
        },
    },
    "OutboundMessage": {
        "type": "object",
        "description": "A Cloud API message object, as in Meta's `POST /{phone_number_id}/messages`, "
        "plus the gateway's `priority` and `phone_number_id`. The customer is `to` (a phone number), "
        "`recipient` (a business-scoped user id), or both, in which case `to` wins, as at Meta. "
        "A message other than a template to "
        "a customer whose 24-hour window with the sending number is closed is refused "
        "(`window_closed`) unless a fallback template is configured.",
        "required": ["type"],
        "anyOf": [{"required": ["to"]}, {"required": ["recipient"]}],
        "properties": {
            "messaging_product": {"const": "whatsapp"},
            "recipient_type": {"type": "string", "examples": ["individual"]},
            "to": {
                "type": "string",
                "pattern": "^[+]?[1-9][0-9]{6,14}$",
                "description": "the customer's phone number; a leading `+` is dropped",
            },
            "recipient": {
                "type": "string",
                "pattern": _USER_ID_PATTERN,
                "description": "the customer's business-scoped user id (BSUID) or parent BSUID, "
                "for a customer who may hide their phone number",
            },
            "type": {
                "type": "string",
                "examples": ["text", "template", "image", "interactive"],
            },
            "priority": {"enum": list(PRIORITIES), "default": "normal"},
            "phone_number_id": {
                "type": "string",
                "pattern": "^[0-9]{5,20}$",
                "description": "The number to send from: the configured `WHATSAPP_PHONE_NUMBER_ID` "
                "(the default) or one added with `wa-gateway numbers add`; any other is refused "
                "(422, `field` is `phone_number_id`).",
            },
        },
        "additionalProperties": True,
    },
    "Accepted": {
        "type": "object",
        "required": ["id", "status"],
        "properties": {"id": {"type": "string"}, "status": _ref("Status")},
    },
    "Status": {"enum": list(STATUS_RANK)},
    "HistoryEntry": {
        "type": "object",
        "required": ["status", "at"],
        "properties": {
            "status": _ref("Status"),
            "at": {"type": "number", "description": "Unix time"},
            "ignored": {
                "type": "boolean",
                "description": "arrived out of order; did not move the status back",
            },
        },
        "additionalProperties": True,
        "description": "one status change, with the note of the step that made it (`attempt`, "
        "`template_fallback`, ...)",
    },
    "Message": {
        "type": "object",
        "required": ["id", "status", "attempts", "history", "priority"],
        "properties": {
            "id": {"type": "string"},
            "to": {"type": "string", "description": "the phone number; empty if sent by BSUID"},
            "recipient": {
                **_NULLABLE_STRING,
                "description": "the business-scoped user id, if the message names one",
            },
            "phone_number_id": {
                "type": ["string", "null"],
                "description": "the number it is sent from (null: the configured one)",
            },
            "priority": {"enum": list(PRIORITIES)},
            "status": _ref("Status"),
            "wamid": {"type": ["string", "null"], "description": "Meta's message id"},
            "attempts": {"type": "integer", "description": "requests made to Meta"},
            "error": _GRAPH_ERROR,
            "dead_letter_reason": {"type": ["string", "null"]},
            "message": {
                "type": ["object", "null"],
                "additionalProperties": True,
                "description": "what is sent to Meta; null once delivered, unless "
                "`MESSAGE_KEEP_BODY` keeps it",
            },
            "created_at": {"type": "number"},
            "updated_at": {"type": "number"},
            "history": {"type": "array", "items": _ref("HistoryEntry")},
        },
    },
    "DeadLetterSummary": {
        "type": "object",
        "required": ["id", "reason", "attempts", "first_failed_at", "last_failed_at"],
        "properties": {
            "id": {"type": "string"},
            "direction": {"enum": list(DIRECTIONS)},
            "kind": _DEAD_LETTER_KIND,
            "reason": {"enum": list(REASONS)},
            "code": {"type": ["integer", "null"]},
            "title": {"type": ["string", "null"]},
            "to": {"type": ["string", "null"]},
            "recipient": _NULLABLE_STRING,
            "priority": {"enum": [*PRIORITIES, None]},
            "attempts": {"type": "integer"},
            "first_failed_at": {"type": "number"},
            "last_failed_at": {"type": "number"},
        },
    },
    "DeadLetter": {
        "type": "object",
        "required": ["id", "reason", "message", "attempts", "first_failed_at", "last_failed_at"],
        "properties": {
            "id": {"type": "string"},
            "reason": {"enum": list(REASONS)},
            "message": {
                **_OPEN,
                "description": "outbound: what is sent to Meta; inbound: the part as it came",
            },
            "priority": {"enum": [*PRIORITIES, None], "description": "null for inbound"},
            "direction": {"enum": list(DIRECTIONS)},
            "kind": _DEAD_LETTER_KIND,
            "task": {
                "type": ["string", "null"],
                "description": "inbound: the task a replay runs, with `payload` as its argument",
            },
            "payload": {
                "description": "inbound: for a message or status, the webhook it came in with "
                "that part alone; for a turn or reply, the turn or reply"
            },
            "source": {
                "type": ["string", "null"],
                "description": "inbound: the id of the task it was dead-lettered from",
            },
            "error": _GRAPH_ERROR,
            "attempts": {"type": "integer"},
            "first_failed_at": {"type": "number"},
            "last_failed_at": {"type": "number"},
            "idempotency_key": {"type": ["string", "null"]},
            "wamid": {"type": ["string", "null"]},
            "created_at": {"type": "number"},
            "history": {"type": "array", "items": _ref("HistoryEntry")},
            "phone_number_id": {
                "type": ["string", "null"],
                "description": "the number it was sent from (null: the configured one)",
            },
        },
    },
    "Conversation": {
        "type": "object",
        "required": [
            "wa_id",
            "customer",
            "phone_number_id",
            "context",
            "profile",
            "handoff",
            "window",
        ],
        "properties": {
            **_CUSTOMER_IDS,
            "phone_number_id": {"type": "string", "description": "the sending number"},
            "context": {
                "oneOf": [_ref("Context"), {"type": "null"}],
                "description": "what the responder sees; null once it expired",
            },
            "profile": {"oneOf": [_ref("Profile"), {"type": "null"}]},
            "handoff": _ref("Handoff"),
            "window": {
                "type": "object",
                "required": ["open", "last_inbound_at", "closes_at"],
                "description": "Meta's 24-hour customer service window",
                "properties": {
                    "open": {"type": "boolean"},
                    "last_inbound_at": _NULLABLE_NUMBER,
                    "closes_at": _NULLABLE_NUMBER,
                },
            },
        },
    },
    "Customer": {
        "type": "object",
        "required": ["key", "wa_id"],
        "description": "who the customer is, as the contact book knows them: the key their "
        "conversation is kept under (their BSUID, or their phone) and every id seen",
        "properties": {
            "key": {"type": "string"},
            "wa_id": _NULLABLE_STRING,
            "user_id": _NULLABLE_STRING,
            "parent_user_id": _NULLABLE_STRING,
            "username": _NULLABLE_STRING,
        },
    },
    "Context": {
        "type": "object",
        "required": ["exchanges", "summary"],
        "properties": {
            "phone_number_id": {"type": "string"},
            "wa_id": {"type": "string"},
            "exchanges": {"type": "array", "items": _ref("Exchange")},
            "summary": {
                "type": "object",
                "description": "what the exchanges folded out of the context were about",
                "properties": {
                    "exchanges": {"type": "integer"},
                    "since": _NULLABLE_NUMBER,
                    "until": _NULLABLE_NUMBER,
                    "topics": _COUNTS,
                    "entities": _COUNTS,
                    "highlights": {"type": "array", "items": {"type": "string"}},
                    "text": {"type": "string"},
                },
            },
            "last_inbound_at": _NULLABLE_NUMBER,
            "updated_at": _NULLABLE_NUMBER,
            "expires_at": {**_NULLABLE_NUMBER, "description": "when the context is forgotten"},
        },
    },
    "Exchange": {
        "type": "object",
        "required": ["id", "role", "type", "text", "at"],
        "properties": {
            "id": {"type": "string"},
            "role": {"enum": [CUSTOMER, BUSINESS]},
            "type": {"type": "string", "examples": ["text", "image", "interactive"]},
            "text": {"type": "string", "description": "what was said, or a description of it"},
            "at": {"type": "number"},
            "entities": {"type": "array", "items": {"type": "string"}},
            "data": {**_OPEN, "description": "a button's id, a location, a media file, ..."},
        },
    },
    "Profile": {
        "type": "object",
        "properties": {
            "message_count": {"type": "integer"},
            "first_seen": _NULLABLE_NUMBER,
            "last_interaction": _NULLABLE_NUMBER,
            "language": {"type": ["string", "null"]},
            "preference": {"type": ["string", "null"], "examples": ["quick", "detailed"]},
            "interests": _COUNTS,
            "top_interests": {"type": "array", "items": {"type": "string"}},
            "complaints": {"type": "integer"},
            "ratings": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["score", "at"],
                    "properties": {
                        "score": {"type": "integer", "minimum": 1, "maximum": 5},
                        "at": {"type": "number"},
                    },
                },
            },
            "average_rating": _NULLABLE_NUMBER,
        },
    },
    "Handoff": {
        "type": "object",
        "required": ["active"],
        "description": '`{"active": false}` while the gateway answers by itself',
        "properties": {
            "active": {"type": "boolean"},
            "since": {"type": "number"},
            "by": {"enum": [BY_CUSTOMER, BY_OPERATOR]},
            "reason": {"type": ["string", "null"]},
            "message_id": {
                "type": ["string", "null"],
                "description": "the customer's message that asked for a person",
            },
        },
    },
    "EventSubscription": {
        "type": "object",
        "required": list(_SUBSCRIPTION_PROPERTIES),
        "properties": _SUBSCRIPTION_PROPERTIES,
    },
    "HandedOffConversation": {
        "type": "object",
        "required": ["wa_id", "customer", "phone_number_id", "handoff"],
        "properties": {
            **_CUSTOMER_IDS,
            "phone_number_id": {"type": "string"},
            "handoff": _ref("Handoff"),
        },
    },
    "FiringAlert": {
        "type": "object",
        "required": ["name", "level", "title", "since"],
        "properties": {
            "name": {"type": "string"},
            "level": {"enum": [WARNING, CRITICAL]},
            "title": {"type": "string"},
            "since": {"type": "number"},
        },
    },
    "AlertEvent": {
        "type": "object",
        "required": ["id", "name", "status", "at"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "level": {"enum": [WARNING, CRITICAL]},
            "status": {"enum": [FIRING, RESOLVED]},
            "title": {"type": "string"},
            "summary": {"type": "string"},
            "value": _NULLABLE_NUMBER,
            "threshold": _NULLABLE_NUMBER,
            "at": {"type": "number"},
            "deployment": {"type": "string"},
            "delivered": {
                "type": "array",
                "items": {"type": "string"},
                "description": "the channels that took the notification",
            },
            "failed": {"type": "array", "items": {"type": "string"}},
        },
    },
}


SCHEMAS["Template"] = {
    "type": "object",
    "required": ["id", "name", "language", "status", "category", "components"],
    "description": "a message template as Meta last described it (sync or webhook)",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "language": {"type": "string"},
        "status": {"type": "string", "description": "APPROVED, PENDING, REJECTED, PAUSED..."},
        "category": {"type": "string", "description": "MARKETING, UTILITY or AUTHENTICATION"},
        "components": {"type": "array", "items": _OPEN},
        "quality_score": {**_NULLABLE_STRING, "description": "GREEN, YELLOW, RED or UNKNOWN"},
        "reason": {**_NULLABLE_STRING, "description": "why Meta rejected or paused it"},
        "updated_at": {"type": "number"},
    },
}
SCHEMAS["CustomerPreferences"] = {
    "type": "object",
    "required": ["phone_number_id", "customer", "marketing_opt_out"],
    "properties": {
        "phone_number_id": {"type": "string"},
        "customer": _ref("Customer"),
        "marketing_opt_out": {
            "type": ["object", "null"],
            "description": "null unless the customer opted out of marketing from this number",
            "properties": {
                "since": {"type": "number"},
                "source": {"enum": list(SOURCES)},
                "message_id": {
                    **_NULLABLE_STRING,
                    "description": "the message that carried the keyword",
                },
            },
        },
    },
}
SCHEMAS["Campaign"] = {
    "type": "object",
    "required": ["id", "state", "template", "audience", "dispatched", "counts", "pricing"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "state": {"enum": list(STATES)},
        "template": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "language": {"type": "string"}},
        },
        "category": {"type": "string"},
        "phone_number_id": {"type": "string"},
        "rate_share": {"type": "number"},
        "schedule_at": _NULLABLE_STRING,
        "audience": {"type": "integer", "description": "recipients"},
        "dispatched": {"type": "integer", "description": "recipients handed out so far"},
        "counts": {
            "type": "object",
            "description": "recipients that reached each status (a read message counts as "
            "sent and delivered too); `opted_out` and `invalid` were skipped",
            "properties": {status: {"type": "integer"} for status in COUNTED},
        },
        "pricing": {**_COUNTS, "description": "messages by Meta's pricing category"},
        "created_at": {"type": "string"},
        "ended_at": _NULLABLE_STRING,
    },
}
_CAMPAIGN_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_CAMPAIGN = _json(_ref("Campaign"), "the campaign")
_PREFERENCES = _json(_ref("CustomerPreferences"), "the customer and their marketing opt-out")


def _campaign_change(operation: str, summary: str) -> dict[str, Any]:
    return {
        "post": {
            "operationId": operation,
            "security": _needs(SEND),
            "summary": summary,
            "parameters": [_CAMPAIGN_ID],
            "responses": {
                "200": _CAMPAIGN,
                **_guarded(per_number=True),
                "404": _error("no campaign with this id"),
                "409": _error("its state does not allow it (`invalid_state`)"),
            },
        }
    }


def _opt(operation: str, summary: str) -> dict[str, Any]:
    return {
        "post": {
            "operationId": operation,
            "security": _needs(SEND),
            "summary": summary,
            "parameters": [_WA_ID],
            "responses": {
                "200": _PREFERENCES,
                "400": _error("not a WhatsApp id"),
                **_guarded(per_number=True),
            },
        }
    }


BUSINESS_PATHS: dict[str, Any] = {
    "/v1/templates": {
        "get": {
            "operationId": "listTemplates",
            "security": _needs(READ),
            "summary": "The account's templates as kept (wa-gateway templates sync, webhooks)",
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["templates", "synced_at"],
                        "properties": {
                            "templates": {"type": "array", "items": _ref("Template")},
                            "synced_at": _NULLABLE_STRING,
                        },
                    },
                    "templates by name and language",
                ),
                **_guarded(),
            },
        }
    },
    "/v1/customers/{id}": {
        "get": {
            "operationId": "getCustomer",
            "security": _needs(READ),
            "summary": "A customer's ids and marketing opt-out",
            "parameters": [_WA_ID],
            "responses": {
                "200": _PREFERENCES,
                "400": _error("not a WhatsApp id"),
                **_guarded(per_number=True),
                "404": _error("the gateway knows nothing of this customer"),
            },
        }
    },
    "/v1/customers/{id}/opt-out": _opt("optOutCustomer", "Opt the customer out of marketing"),
    "/v1/customers/{id}/opt-in": _opt("optInCustomer", "Opt the customer back in to marketing"),
    "/v1/campaigns": {
        "post": {
            "operationId": "createCampaign",
            "security": _needs(SEND),
            "summary": "Send an approved template to an audience on the bulk lane",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["template", "audience"],
                            "properties": {
                                "name": {"type": "string", "maxLength": 200},
                                "template": {
                                    "type": "object",
                                    "required": ["name", "language"],
                                    "properties": {
                                        "name": {"type": "string"},
                                        "language": {"type": "string"},
                                    },
                                },
                                "components": {
                                    "type": "array",
                                    "items": _OPEN,
                                    "description": "header and button components every "
                                    "recipient gets",
                                },
                                "audience": {
                                    "type": "array",
                                    "minItems": 1,
                                    "maxItems": MAX_AUDIENCE,
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "to": {"type": "string"},
                                            "recipient": {"type": "string"},
                                            "parameters": {
                                                "type": "array",
                                                "items": {"type": "string"},
                                                "description": "the body's parameters",
                                            },
                                        },
                                    },
                                },
                                "schedule_at": {"type": "string", "format": "date-time"},
                                "rate_share": {
                                    "type": "number",
                                    "exclusiveMinimum": 0,
                                    "maximum": 1,
                                    "description": "share of the number's send rate; 0.5 "
                                    "unless given",
                                },
                                "phone_number_id": {"type": "string"},
                            },
                        }
                    }
                },
            },
            "responses": {
                "201": _CAMPAIGN,
                "400": _error("the body is not JSON"),
                **_guarded(per_number=True),
                "413": _error("the body is too large"),
                "422": _error(
                    "invalid campaign (`invalid_campaign`, `field` names it), or a template "
                    "that is not approved (`template_invalid`)"
                ),
            },
        }
    },
    "/v1/campaigns/{id}": {
        "get": {
            "operationId": "getCampaign",
            "security": _needs(READ),
            "summary": "A campaign's state, counts per status and per pricing category",
            "parameters": [_CAMPAIGN_ID],
            "responses": {
                "200": _CAMPAIGN,
                **_guarded(per_number=True),
                "404": _error("no campaign with this id"),
            },
        }
    },
    "/v1/campaigns/{id}/pause": _campaign_change("pauseCampaign", "Stop handing out"),
    "/v1/campaigns/{id}/resume": _campaign_change("resumeCampaign", "Go on where it paused"),
    "/v1/campaigns/{id}/cancel": _campaign_change("cancelCampaign", "Stop for good"),
    "/v1/analytics/pricing": {
        "get": {
            "operationId": "getPricing",
            "security": _needs(READ),
            "summary": "Messages Meta priced, per day, number, category and pricing model",
            "parameters": [
                {
                    "name": name,
                    "in": "query",
                    "required": False,
                    "description": description,
                    "schema": {"type": "string", "format": "date"},
                }
                for name, description in (
                    ("from", "first UTC day; default 29 days before `to`"),
                    ("to", "last UTC day; default today"),
                )
            ]
            + [
                {
                    "name": "phone_number_id",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "pattern": "^[0-9]{5,20}$"},
                }
            ],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["from", "to", "pricing"],
                        "properties": {
                            "from": {"type": "string"},
                            "to": {"type": "string"},
                            "pricing": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "day": {"type": "string"},
                                        "phone_number_id": {"type": "string"},
                                        "category": {"type": "string"},
                                        "billable": {"type": "boolean"},
                                        "pricing_model": {"type": "string"},
                                        "messages": {"type": "integer"},
                                    },
                                },
                            },
                        },
                    },
                    "counts, oldest day first",
                ),
                "400": _error("a bad day, range or number (`invalid_parameter`)"),
                **_guarded(per_number=True),
            },
        }
    },
}
"""The operations of templates, customers' opt-outs, campaigns and pricing."""

_KEY_DESCRIPTION = (
    "A key from `GATEWAY_API_KEYS` or `wa-gateway apikeys create --scope ...`. Each operation "
    f"lists the scope it needs ({', '.join(f'`{scope}`' for scope in SCOPES)}): `{SEND}` sends "
    f"messages and hands conversations over, `{READ}` reads messages, conversations and alerts, "
    f"`{DEAD_LETTERS}` lists, replays and purges dead letters, `{ADMIN}` holds every scope. "
    "A key may be limited to some sending numbers. Keys of `GATEWAY_API_KEYS` hold `admin`."
)


def spec() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the ``/v1`` API."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "wa-gateway",
            "version": __version__,
            "description": "Send WhatsApp messages through the gateway: priority lanes, retries, "
            "rate limits, the 24-hour window and a dead-letter queue.",
        },
        "security": [{"apiKey": []}],
        "paths": {
            "/v1/messages": {
                "post": {
                    "operationId": "sendMessage",
                    "security": _needs(SEND),
                    "summary": "Queue one message",
                    "parameters": [_IDEMPOTENCY],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("OutboundMessage")}},
                    },
                    "responses": {
                        "202": _json(_ref("Accepted"), "durably queued"),
                        "400": _error("the body is not JSON"),
                        **_guarded(per_number=True),
                        "409": _error("the Idempotency-Key was used with another body"),
                        "413": _error("the body is too large"),
                        "422": _error(
                            "invalid message or number (`field` names it), `window_closed`, "
                            "`template_invalid` or `opted_out`"
                        ),
                        "429": _QUEUE_FULL,
                    },
                }
            },
            "/v1/messages/batch": {
                "post": {
                    "operationId": "sendMessages",
                    "security": _needs(SEND),
                    "summary": f"Queue up to {MAX_BATCH} messages, all or none",
                    "parameters": [_IDEMPOTENCY],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["messages"],
                                    "properties": {
                                        "messages": {
                                            "type": "array",
                                            "minItems": 1,
                                            "maxItems": MAX_BATCH,
                                            "items": _ref("OutboundMessage"),
                                        }
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": _json(
                            {
                                "type": "object",
                                "required": ["messages"],
                                "properties": {
                                    "messages": {"type": "array", "items": _ref("Accepted")}
                                },
                            },
                            "every message durably queued, ids in request order",
                        ),
                        "400": _error("the body is not JSON"),
                        **_guarded(per_number=True),
                        "409": _error("the Idempotency-Key was used with another body"),
                        "413": _error("the body is too large"),
                        "422": _error("one or more messages refused (see `errors`)"),
                        "429": _QUEUE_FULL,
                    },
                }
            },
            "/v1/messages/{id}": {
                "get": {
                    "operationId": "getMessage",
                    "security": _needs(READ),
                    "summary": "A message's status, wamid, attempts, error and history",
                    "parameters": [_MESSAGE_ID],
                    "responses": {
                        "200": _json(_ref("Message"), "the message"),
                        **_guarded(per_number=True),
                        **_NOT_FOUND,
                    },
                }
            },
            "/v1/dead-letters": {
                "get": {
                    "operationId": "listDeadLetters",
                    "security": _needs(DEAD_LETTERS),
                    "summary": "Dead letters, most recent failure first",
                    "parameters": [
                        {"name": "reason", "in": "query", "schema": {"enum": list(REASONS)}},
                        {"name": "code", "in": "query", "schema": {"type": "integer"}},
                        {
                            "name": "direction",
                            "in": "query",
                            "schema": {"enum": list(DIRECTIONS)},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        },
                        {"name": "offset", "in": "query", "schema": {"type": "integer"}},
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["dead_letters", "total"],
                                "properties": {
                                    "dead_letters": {
                                        "type": "array",
                                        "items": _ref("DeadLetterSummary"),
                                    },
                                    "total": {"type": "integer"},
                                    "next_offset": {"type": ["integer", "null"]},
                                },
                            },
                            "a page of dead letters",
                        ),
                        "400": _error(
                            "`code`, `limit` or `offset` is not an integer in range "
                            "(`invalid_parameter`)"
                        ),
                        **_guarded(),
                        "422": _error("invalid filter"),
                    },
                }
            },
            "/v1/dead-letters/{id}": {
                "get": {
                    "operationId": "getDeadLetter",
                    "security": _needs(DEAD_LETTERS),
                    "summary": "One dead letter in full",
                    "parameters": [_MESSAGE_ID],
                    "responses": {
                        "200": _json(_ref("DeadLetter"), "the dead letter"),
                        **_guarded(),
                        **_NOT_FOUND,
                    },
                },
                "delete": {
                    "operationId": "deleteDeadLetter",
                    "security": _needs(DEAD_LETTERS),
                    "summary": "Purge one dead letter",
                    "parameters": [_MESSAGE_ID],
                    "responses": {
                        "204": {"description": "purged"},
                        **_guarded(),
                        **_NOT_FOUND,
                    },
                },
            },
            "/v1/dead-letters/{id}/replay": {
                "post": {
                    "operationId": "replayDeadLetter",
                    "security": _needs(DEAD_LETTERS),
                    "summary": "Send again: same id and idempotency key, attempts reset",
                    "parameters": [_MESSAGE_ID],
                    "responses": {
                        "202": _json(_ref("Accepted"), "queued again"),
                        **_guarded(),
                        **_NOT_FOUND,
                    },
                }
            },
            "/v1/dead-letters/replay": {
                "post": {
                    "operationId": "replayDeadLetters",
                    "security": _needs(DEAD_LETTERS),
                    "summary": "Replay every dead letter matching a filter",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "reason": {"enum": list(REASONS)},
                                        "code": {"type": "integer"},
                                        "direction": {"enum": list(DIRECTIONS)},
                                        "all": {"type": "boolean"},
                                        "limit": {"type": "integer", "minimum": 1},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": _json(
                            {
                                "type": "object",
                                "required": ["replayed", "count"],
                                "properties": {
                                    "replayed": {"type": "array", "items": {"type": "string"}},
                                    "count": {"type": "integer"},
                                },
                            },
                            "the ids queued again",
                        ),
                        "400": _error("the body is not JSON"),
                        **_guarded(),
                        "422": _error("no filter, or an invalid one"),
                    },
                }
            },
            "/v1/conversations/{id}": {
                "get": {
                    "operationId": "getConversation",
                    "security": _needs(READ),
                    "summary": "A customer's conversation: context, profile, handoff and window",
                    "parameters": [_WA_ID],
                    "responses": {
                        "200": _json(_ref("Conversation"), "the conversation"),
                        "400": _error("not a WhatsApp id"),
                        **_guarded(per_number=True),
                        "404": _error("no conversation with this customer"),
                    },
                }
            },
            "/v1/conversations/{id}/handoff": {
                "post": {
                    "operationId": "startHandoff",
                    "security": _needs(SEND),
                    "summary": "Hand the conversation to a person: auto-replies stop",
                    "parameters": [_WA_ID],
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"reason": {"type": "string"}},
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _HANDOFF,
                        "201": _HANDOFF,
                        "400": _error("not a WhatsApp id, or a body that is not an object"),
                        **_guarded(per_number=True),
                    },
                },
                "delete": {
                    "operationId": "endHandoff",
                    "security": _needs(SEND),
                    "summary": "End the handoff: auto-replies resume",
                    "parameters": [_WA_ID],
                    "responses": {
                        "200": _HANDOFF,
                        "400": _error("not a WhatsApp id"),
                        **_guarded(per_number=True),
                        "404": _error("no handoff is active"),
                    },
                },
            },
            "/v1/event-subscriptions": {
                "post": {
                    "operationId": "createEventSubscription",
                    "security": _needs(ADMIN),
                    "summary": "Send events to a URL: signed JSON POSTs, retried, dead-lettered "
                    "when they keep failing (docs/EVENTS.md)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["url", "events"],
                                    "properties": {
                                        "url": {
                                            "type": "string",
                                            "description": "http or https; no loopback or "
                                            "private address unless EVENT_ALLOW_PRIVATE_URLS",
                                        },
                                        "events": {
                                            "type": "array",
                                            "minItems": 1,
                                            "items": {"enum": list(EVENT_TYPES)},
                                        },
                                        "description": {"type": "string", "maxLength": 200},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "201": _json(
                            {
                                "type": "object",
                                "required": [*_SUBSCRIPTION_PROPERTIES, "secret"],
                                "properties": {
                                    **_SUBSCRIPTION_PROPERTIES,
                                    "secret": {
                                        "type": "string",
                                        "description": "signs every event; shown only here",
                                    },
                                },
                            },
                            "the subscription and its secret",
                        ),
                        "400": _error("the body is not JSON"),
                        **_guarded(),
                        "422": _error(
                            "a URL or event types the gateway refuses (`invalid_subscription`, "
                            "`field` says which)"
                        ),
                    },
                },
                "get": {
                    "operationId": "listEventSubscriptions",
                    "security": _needs(ADMIN),
                    "summary": "Every event subscription, oldest first, without secrets",
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["subscriptions"],
                                "properties": {
                                    "subscriptions": {
                                        "type": "array",
                                        "items": _ref("EventSubscription"),
                                    }
                                },
                            },
                            "the subscriptions",
                        ),
                        **_guarded(),
                    },
                },
            },
            "/v1/event-subscriptions/{id}": {
                "get": {
                    "operationId": "getEventSubscription",
                    "security": _needs(ADMIN),
                    "summary": "One event subscription, without its secret",
                    "parameters": [_SUBSCRIPTION_ID],
                    "responses": {
                        "200": _json(_ref("EventSubscription"), "the subscription"),
                        **_guarded(),
                        "404": _error("no such subscription"),
                    },
                },
                "delete": {
                    "operationId": "deleteEventSubscription",
                    "security": _needs(ADMIN),
                    "summary": "Stop sending events to a subscription",
                    "parameters": [_SUBSCRIPTION_ID],
                    "responses": {
                        "204": {"description": "deleted"},
                        **_guarded(),
                        "404": _error("no such subscription"),
                    },
                },
            },
            "/v1/conversations": {
                "get": {
                    "operationId": "listHandedOffConversations",
                    "security": _needs(READ),
                    "summary": "The conversations handed to a person, oldest handoff first",
                    "parameters": [
                        {
                            "name": "handoff",
                            "in": "query",
                            "required": True,
                            "schema": {"const": "active"},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        },
                        {"name": "offset", "in": "query", "schema": {"type": "integer"}},
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["conversations", "next_offset"],
                                "properties": {
                                    "conversations": {
                                        "type": "array",
                                        "items": _ref("HandedOffConversation"),
                                    },
                                    "next_offset": {"type": ["integer", "null"]},
                                },
                            },
                            "a page of handed-off conversations",
                        ),
                        "400": _error(
                            "`handoff` is not `active`, or `limit` or `offset` is not an integer "
                            "in range (`invalid_parameter`)"
                        ),
                        **_guarded(per_number=True),
                    },
                }
            },
            "/v1/conversations/{id}/messages": {
                "post": {
                    "operationId": "answerConversation",
                    "security": _needs(SEND),
                    "summary": "An agent's answer: sent on the high lane, recorded in the "
                    "context as an agent turn; refused when the 24-hour window is closed",
                    "parameters": [_WA_ID],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["text"],
                                    "properties": {
                                        "text": {
                                            "type": "string",
                                            "minLength": 1,
                                            "maxLength": 4096,
                                        },
                                        "agent": {
                                            "type": "string",
                                            "maxLength": 100,
                                            "description": "who answered, kept with the turn",
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": _json(
                            {
                                "type": "object",
                                "required": ["wa_id", "customer", "id", "status"],
                                "properties": {
                                    **_CUSTOMER_IDS,
                                    "id": {"type": "string", "description": "the message id"},
                                    "status": _ref("Status"),
                                },
                            },
                            "queued on the high lane",
                        ),
                        "400": _error("not a WhatsApp id, or the body is not JSON"),
                        **_guarded(per_number=True),
                        "422": _error(
                            "no text, or the customer's 24-hour window is closed "
                            "(`window_closed`)"
                        ),
                    },
                }
            },
            "/v1/alerts": {
                "get": {
                    "operationId": "listAlerts",
                    "security": _needs(READ),
                    "summary": "Alerts firing now, and the history of alerts and recoveries",
                    "parameters": [
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        }
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["firing", "history"],
                                "properties": {
                                    "firing": {"type": "array", "items": _ref("FiringAlert")},
                                    "history": {"type": "array", "items": _ref("AlertEvent")},
                                },
                            },
                            "alerts, newest first",
                        ),
                        "400": _error("`limit` is not an integer in range (`invalid_parameter`)"),
                        **_guarded(),
                    },
                }
            },
            **BUSINESS_PATHS,
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": _KEY_DESCRIPTION,
                }
            },
        },
    }


@bp.get("/openapi.json")
def openapi_json():
    """The OpenAPI 3.1 description of the ``/v1`` API (public: it holds no secret)."""
    return jsonify(spec())
