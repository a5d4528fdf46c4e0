from __future__ import annotations

import json
import logging

from app.config import load_settings, secret_values
from app.ops.logging import (
    JsonFormatter,
    Redactor,
    TextFormatter,
    bind,
    bound,
    clear,
    log_context,
    mask_phone_numbers,
    unbind,
)

ENV = {
    "WHATSAPP_ACCESS_TOKEN": "EAAtoken-abcdef-123456",
    "WHATSAPP_WEBHOOK_SECRET": "app-secret-0123456789",
    "GATEWAY_API_KEYS": "key-one-123456, key-two-654321",
    "FLOWER_BASIC_AUTH": "admin:flower-password-42",
    "ALERT_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/xyz987",
    "REDIS_URL": "redis://:redis-pass-777@cache:6379/0",
    "LOG_LEVEL": "INFO",
}
REDACTOR = Redactor(secret_values(load_settings(ENV, env_file=None, require_gateway=False), ENV))


def emit(formatter: logging.Formatter, message: str, *args, exc_info=None, **extra) -> str:
    record = logging.LogRecord("app.test", logging.INFO, __file__, 1, message, args, exc_info)
    record.__dict__.update(extra)
    return formatter.format(record)


def test_a_line_is_one_json_object_with_the_bound_ids():
    formatter = JsonFormatter(redactor=REDACTOR)
    with log_context(task_id="1c0d9d52-1111-2222-3333-444455556666", message_id="9f2c"):
        with log_context(wamid="wamid.HBgL"):
            line = json.loads(emit(formatter, "sent %s", "ok", queue="send.high", attempts=2))
        after = json.loads(emit(formatter, "later"))
    assert line["message"] == "sent ok" and line["level"] == "info" and line["logger"] == "app.test"
    assert line["task_id"] == "1c0d9d52-1111-2222-3333-444455556666"
    assert (line["message_id"], line["wamid"], line["queue"], line["attempts"]) == (
        "9f2c",
        "wamid.HBgL",
        "send.high",
        2,
    )
    assert "wamid" not in after and after["message_id"] == "9f2c"


def test_bind_unbind_and_clear():
    token = bind(task_id="t1")
    assert bound() == {"task_id": "t1"}
    unbind(token)
    assert bound() == {}
    bind(task_id="t2")
    clear()
    assert bound() == {}


def test_phone_numbers_are_masked_but_ids_and_durations_are_not():
    assert (
        mask_phone_numbers("to 573001234567 and +15551234567") == "to ********4567 and *******4567"
    )
    kept = "task 12345678-aaaa-bbbb-cccc-123456789012 took 0.123456789s, message 5f0c6c1e12345678"
    assert mask_phone_numbers(kept) == kept
    assert mask_phone_numbers('{"from": "573001234567"}') == '{"from": "********4567"}'


def test_secrets_never_reach_a_line_whatever_the_level_or_field():
    formatter = JsonFormatter(redactor=REDACTOR)
    try:
        raise RuntimeError("token EAAtoken-abcdef-123456 refused")
    except RuntimeError:
        import sys

        exc_info = sys.exc_info()
    line = emit(
        formatter,
        "calling with Authorization: Bearer %s, secret=%s, url %s, key %s, auth %s, ?hub.verify_token=abc123&x",
        "EAAtoken-abcdef-123456",
        "app-secret-0123456789",
        "https://hooks.slack.com/services/T0/B0/xyz987",
        "key-two-654321",
        "admin:flower-password-42",
        exc_info=exc_info,
        payload={"password": "redis-pass-777"},
    )
    for secret in (
        "EAAtoken-abcdef-123456",
        "app-secret-0123456789",
        "xyz987",
        "key-two-654321",
        "flower-password-42",
        "redis-pass-777",
        "abc123",
    ):
        assert secret not in line
    assert "[redacted]" in json.loads(line)["message"]


def test_text_format_is_redacted_too():
    formatter = TextFormatter(redactor=REDACTOR)
    with log_context(task_id="t-1"):
        line = emit(formatter, "customer 573001234567 with token EAAtoken-abcdef-123456")
    assert line.endswith("[task_id=t-1]")
    assert "573001234567" not in line and "EAAtoken" not in line and "********4567" in line


def test_s3_credentials_are_redacted_from_settings_and_from_boto3s_environment():
    env = {
        **ENV,
        "MEDIA_STORE": "s3",
        "MEDIA_S3_BUCKET": "media",
        "MEDIA_S3_ACCESS_KEY_ID": "AKIAEXAMPLEID000001",
        "MEDIA_S3_SECRET_ACCESS_KEY": "media-s3-secret-0123456789",
        "AWS_SECRET_ACCESS_KEY": "aws-chain-secret-0123456789",
    }
    redactor = Redactor(
        secret_values(load_settings(env, env_file=None, require_gateway=False), env)
    )
    line = emit(
        JsonFormatter(redactor=redactor),
        "signing with %s %s %s",
        "AKIAEXAMPLEID000001",
        "media-s3-secret-0123456789",
        "aws-chain-secret-0123456789",
    )
    assert "AKIAEXAMPLEID000001" not in line
    assert "media-s3-secret-0123456789" not in line
    assert "aws-chain-secret-0123456789" not in line


def test_secret_shapes_are_redacted_whatever_their_case_or_script():
    """Values the process does not know are still caught by their shape; an ASCII text skips the
    patterns it cannot match, a non-ASCII one is searched in full (the long s folds onto "s")."""
    redact = Redactor()
    shapes = [
        ("PASSWORD: hunter22", "PASSWORD: [redacted]"),
        ("Api_Key=k-998877", "Api_Key=[redacted]"),
        ("paſsword=hunter22", "paſsword=[redacted]"),
        ("café bEaReR abc.def", "café bEaReR [redacted]"),
        ("amqp://guest:pw-123@broker//", "amqp://guest:[redacted]@broker//"),
        ("queue inbound, task 5f0c2d7e-8e4a-4a52-9d1b-2c7c3a1b9e0f", None),
    ]
    for text, expected in shapes:
        assert redact(text) == (expected or text)
