from __future__ import annotations

import pytest

from app.whatsapp import errors
from app.whatsapp.errors import GraphAPIError


def body(code, subcode=None, details=None):
    error = {"message": "m", "type": "OAuthException", "code": code, "fbtrace_id": "Atrace"}
    if subcode:
        error["error_subcode"] = subcode
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return {"error": error}


@pytest.mark.parametrize(
    ("code", "status", "kind", "decision"),
    [
        (4, 400, errors.ThrottledError, errors.RETRY_AFTER_DELAY),
        (80007, 400, errors.ThrottledError, errors.RETRY_AFTER_DELAY),
        (130429, 429, errors.ThrottledError, errors.RETRY_AFTER_DELAY),
        (131056, 400, errors.ThrottledError, errors.RETRY_AFTER_DELAY),
        (131057, 400, errors.ThrottledError, errors.RETRY_AFTER_DELAY),
        (1, 500, errors.TransientError, errors.RETRY_LATER),
        (2, 503, errors.TransientError, errors.RETRY_LATER),
        (131000, 500, errors.TransientError, errors.RETRY_LATER),
        (131016, 503, errors.TransientError, errors.RETRY_LATER),
        (100, 400, errors.PermanentError, errors.DEAD_LETTER),
        (131026, 400, errors.RecipientNotOnWhatsAppError, errors.DEAD_LETTER),
        (131047, 400, errors.WindowClosedError, errors.DEAD_LETTER),
        (131051, 400, errors.PermanentError, errors.DEAD_LETTER),
        (131052, 400, errors.PermanentError, errors.DEAD_LETTER),
        (131053, 400, errors.PermanentError, errors.DEAD_LETTER),
        (132000, 400, errors.TemplateError, errors.DEAD_LETTER),
        (132015, 400, errors.TemplateError, errors.DEAD_LETTER),
        (0, 401, errors.ConfigurationError, errors.ALERT_OPERATOR),
        (10, 403, errors.ConfigurationError, errors.ALERT_OPERATOR),
        (190, 401, errors.ConfigurationError, errors.ALERT_OPERATOR),
        (200, 403, errors.ConfigurationError, errors.ALERT_OPERATOR),
        (299, 403, errors.ConfigurationError, errors.ALERT_OPERATOR),
        (131031, 400, errors.ConfigurationError, errors.ALERT_OPERATOR),
        (368, 400, errors.ConfigurationError, errors.ALERT_OPERATOR),
    ],
)
def test_codes_map_to_their_decision(code, status, kind, decision):
    error = GraphAPIError.from_response(status, body(code))
    assert type(error) is kind
    assert error.decision == decision
    assert error.code == code


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (500, errors.TransientError),
        (502, errors.TransientError),
        (429, errors.ThrottledError),
        (401, errors.ConfigurationError),
        (403, errors.ConfigurationError),
        (400, errors.PermanentError),
        (404, errors.PermanentError),
    ],
)
def test_unknown_codes_fall_back_on_the_http_status(status, kind):
    assert type(GraphAPIError.from_response(status, body(999999))) is kind
    assert type(GraphAPIError.from_response(status, "not json")) is kind


def test_error_carries_meta_fields_and_the_server_delay():
    error = GraphAPIError.from_response(
        429, body(130429, subcode=2494055, details="slow down"), retry_after=7
    )
    assert (error.code, error.subcode, error.details, error.fbtrace_id) == (
        130429,
        2494055,
        "slow down",
        "Atrace",
    )
    assert error.retry_after == 7
    assert error.http_status == 429
    assert error.to_dict()["decision"] == errors.RETRY_AFTER_DELAY


def test_every_class_has_a_docstring():
    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, Exception):
            assert value.__doc__, value
