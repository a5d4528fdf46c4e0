"""The one parser of ``/v1`` query numbers and booleans, without Redis."""

from __future__ import annotations

import pytest
from flask import Flask

from app.errors import ApiError
from app.web.query import query_bool, query_int

pytestmark = pytest.mark.unit

app = Flask(__name__)


def parse_int(query: str) -> int | None:
    with app.test_request_context(f"/?{query}"):
        return query_int("n", 7, 0, 1000)


def parse_bool(query: str) -> bool:
    with app.test_request_context(f"/?{query}"):
        return query_bool("flag", False)


def test_ascii_digits_in_range_are_read_and_absence_is_the_default():
    assert parse_int("n=0") == 0
    assert parse_int("n=1000") == 1000
    assert parse_int("n=007") == 7
    assert parse_int("other=1") == 7


@pytest.mark.parametrize(
    "value",
    ["", "%C2%B2", "%D9%A1%D9%A2", "-1", "%2B1", "1e3", "1.0", "true", "1_0", "%201", "1%0A", "1001"],
)
def test_anything_else_is_400_invalid_parameter_naming_it(value):
    with pytest.raises(ApiError) as refused:
        parse_int(f"n={value}")
    assert (refused.value.status, refused.value.code) == (400, "invalid_parameter")
    assert refused.value.to_dict()["field"] == "n"


def test_booleans_are_true_or_false_only():
    assert parse_bool("flag=true") is True
    assert parse_bool("flag=false") is False
    assert parse_bool("") is False
    for value in ("1", "0", "True", "yes", "on", ""):
        with pytest.raises(ApiError) as refused:
            parse_bool(f"flag={value}")
        assert refused.value.code == "invalid_parameter"
