"""Every kind of id is matched whole, in ASCII: no trailing newline, no other script's digits,
nothing that could be a path."""

from __future__ import annotations

import pytest

from app.whatsapp import ids

pytestmark = pytest.mark.unit

AROUND = ["{}\n", "{}\r\n", "\n{}", " {}", "{} ", "{}/", "../{}", "{}\x00", "{}/../x"]
"""Ways to wrap a valid id that must each be refused."""

VALID = {
    ids.is_phone_number: ["573001234567", "16505551234"],
    ids.is_wa_id: ["573001234567", "12345"],
    ids.is_user_id: ["US.13491208655302741918", "US.ENT.11815799212886844830", "CO.a1B2"],
    ids.is_customer_id: ["573001234567", "US.13491208655302741918", "US.ENT.1"],
    ids.is_phone_number_id: ["106540352242922", "12345"],
    ids.is_media_id: ["1003383421387256", "1"],
    ids.is_wamid: ["wamid.HBgLNTczMDAxMjM0NTY3FQIAEhgg", "wamid.gBGGSFcCNEOPAgkO_KJ55r4w_ww"],
}

INVALID = {
    ids.is_phone_number: ["0573001234567", "5730012345678901", "+573001234567", "123456"],
    ids.is_wa_id: ["1234", "1" * 21, "²²²²²", "١٢٣٤٥", "５７３００１２３４５６７"],
    ids.is_user_id: ["us.1", "US.", "US.ENT.", "US.1.2", "US." + "1" * 129, "USA.1", "US.١"],
    ids.is_customer_id: ["..", ".", "", "/tmp/x", "../../../../tmp/x", "US.ENT./../x"],
    ids.is_phone_number_id: ["1234", "1" * 21, "../../_sim/config", "١٢٣٤٥"],
    ids.is_media_id: ["../../../_sim/config", "1" * 33, "12a", "١٢٣", "<MEDIA_ID>"],
    ids.is_wamid: ["wamid.", "WAMID.a", "wamid.a:b", "wamid.a b", "wamid." + "a" * 513],
}


@pytest.mark.parametrize("check", list(VALID), ids=lambda check: check.__name__)
def test_valid_ids_pass_and_nothing_around_them_does(check):
    for value in VALID[check]:
        assert check(value), value
        for wrap in AROUND:
            if check is ids.is_wamid and wrap in ("{}/", "{}/../x"):
                continue  # '/' and '.' are wamid letters (base64, dots): never used as a path
            assert not check(wrap.format(value)), repr(wrap.format(value))


@pytest.mark.parametrize("check", list(INVALID), ids=lambda check: check.__name__)
def test_malformed_ids_and_non_strings_are_refused(check):
    for value in [*INVALID[check], None, 573001234567, b"573001234567", ["1"]]:
        assert not check(value), repr(value)


def test_id_patterns_are_anchored_by_fullmatch_not_by_a_dollar():
    # '$' matches before a trailing newline: every id pattern is used with fullmatch instead.
    for name in dir(ids):
        pattern = getattr(ids, name)
        if hasattr(pattern, "pattern"):
            assert not pattern.pattern.startswith("^") and not pattern.pattern.endswith("$")
