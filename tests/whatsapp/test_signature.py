from __future__ import annotations

import hashlib
import hmac

from app.whatsapp.signature import sign, verify_signature

SECRET = "app-secret-0123456789"
BODY = b'{"object":"whatsapp_business_account","entry":[]}'


def test_sign_matches_meta_definition():
    expected = "sha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert sign(BODY, SECRET) == expected


def test_valid_signature_is_accepted():
    assert verify_signature(BODY, sign(BODY, SECRET), [SECRET])


def test_uppercase_hex_is_accepted():
    header = sign(BODY, SECRET)
    assert verify_signature(BODY, "sha256=" + header[7:].upper(), [SECRET])


def test_previous_secret_is_accepted_during_rotation():
    assert verify_signature(BODY, sign(BODY, "old-secret-123456"), [SECRET, "old-secret-123456"])


def test_missing_header_is_rejected():
    assert not verify_signature(BODY, None, [SECRET])
    assert not verify_signature(BODY, "", [SECRET])


def test_wrong_prefix_and_malformed_hex_are_rejected():
    digest = sign(BODY, SECRET)[7:]
    assert not verify_signature(BODY, "sha1=" + digest, [SECRET])
    assert not verify_signature(BODY, "sha256=" + digest[:-2], [SECRET])
    assert not verify_signature(BODY, "sha256=" + "zz" * 32, [SECRET])


def test_signature_of_another_body_or_secret_is_rejected():
    assert not verify_signature(BODY + b" ", sign(BODY, SECRET), [SECRET])
    assert not verify_signature(BODY, sign(BODY, "another-secret-xyz"), [SECRET])


def test_no_secrets_means_nothing_verifies():
    assert not verify_signature(BODY, sign(BODY, SECRET), [])
