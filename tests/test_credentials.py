from __future__ import annotations

import os
import subprocess

import pytest
from cryptography.fernet import MultiFernet

from app import keys
from app.credentials import (
    CredentialError,
    NumberRegistry,
    SendingNumber,
    generate_key,
    load_cipher,
)
from tests.stack import BIN

pytestmark = pytest.mark.any_redis

TOKEN = "EAAGm0PX4ZCpsBAsecret-token-value-0123456789"


def cipher(*keys_: str) -> MultiFernet:
    return load_cipher(",".join(keys_))


def test_tokens_are_encrypted_at_rest_and_decrypt(redis_client):
    registry = NumberRegistry(redis_client, cipher(generate_key()))
    registry.add(SendingNumber("106540352242922", "15550783881"), TOKEN)
    stored = redis_client.hget(keys.SENDING_NUMBERS, "106540352242922")
    assert TOKEN not in stored
    assert registry.access_token("106540352242922") == TOKEN
    assert registry.access_token("999999999") is None
    (number,) = registry.list()
    assert number.display_phone_number == "15550783881" and TOKEN not in repr(number)


def test_rotation_moves_every_token_to_the_newest_key(redis_client):
    old, new = generate_key(), generate_key()
    NumberRegistry(redis_client, cipher(old)).add(SendingNumber("106540352242922"), TOKEN)
    NumberRegistry(redis_client, cipher(old)).add(SendingNumber("106540352242923"), TOKEN + "b")
    assert NumberRegistry(redis_client, cipher(new, old)).rotate() == 2
    after = NumberRegistry(redis_client, cipher(new))  # the old key can now be dropped
    assert after.access_token("106540352242922") == TOKEN
    assert after.access_token("106540352242923") == TOKEN + "b"
    with pytest.raises(CredentialError) as info:
        NumberRegistry(redis_client, cipher(old)).access_token("106540352242922")
    assert TOKEN not in str(info.value)


def test_remove(redis_client):
    registry = NumberRegistry(redis_client, cipher(generate_key()))
    registry.add(SendingNumber("106540352242922"), TOKEN)
    assert registry.remove("106540352242922")
    assert not registry.remove("106540352242922")
    assert registry.list() == []


@pytest.mark.parametrize(
    ("number", "token"),
    [
        ("abc", TOKEN),
        ("106540352242922", "short"),
        ("106540352242922", "has spaces in the token value"),
        ("106540352242922\n", TOKEN),  # '$' let a trailing newline into the key
        ("../../106540352242922", TOKEN),
        ("106540352242922", TOKEN + "\n"),  # and into the Authorization header
    ],
)
def test_bad_numbers_and_tokens_are_refused_without_echo(redis_client, number, token):
    registry = NumberRegistry(redis_client, cipher(generate_key()))
    with pytest.raises(CredentialError) as info:
        registry.add(SendingNumber(number), token)
    assert token not in str(info.value)
    assert registry.list() == []


@pytest.mark.parametrize("value", ["", "not-a-key", generate_key() + ",garbage"])
def test_missing_or_malformed_keys_are_named(value):
    with pytest.raises(CredentialError) as info:
        load_cipher(value)
    assert "GATEWAY_ENCRYPTION_KEYS" in str(info.value)
    if value:
        assert value.split(",")[-1] not in str(info.value)


def run(*argv: str, env: dict, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "wa-gateway"), *argv],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.real_redis(
    reason="the CLI runs as a child process, which only a real server can share"
)
def test_cli_add_list_rotate_remove_never_prints_the_token(redis_client):
    old, new = generate_key(), generate_key()
    env = {"REDIS_URL": os.environ["REDIS_URL"], "GATEWAY_ENCRYPTION_KEYS": old, "PATH": ""}
    added = run(
        "numbers",
        "add",
        "106540352242922",
        "--display-phone-number",
        "15550783881",
        env=env,
        stdin=TOKEN + "\n",
    )
    assert added.returncode == 0, added.stderr
    listed = run("numbers", "list", env=env)
    assert '"phone_number_id": "106540352242922"' in listed.stdout
    rotated = run("keys", "rotate", env={**env, "GATEWAY_ENCRYPTION_KEYS": f"{new},{old}"})
    assert "re-encrypted 1 token" in rotated.stdout
    assert NumberRegistry(redis_client, cipher(new)).access_token("106540352242922") == TOKEN
    removed = run(
        "numbers", "remove", "106540352242922", env={**env, "GATEWAY_ENCRYPTION_KEYS": new}
    )
    assert removed.returncode == 0
    for result in (added, listed, rotated, removed):
        assert TOKEN not in result.stdout + result.stderr
    assert len(run("keys", "generate", env=env).stdout.strip()) == 44


@pytest.mark.real_redis(
    reason="the CLI runs as a child process, which only a real server can share"
)
def test_cli_without_keys_explains(redis_client):
    result = run("numbers", "list", env={"REDIS_URL": os.environ["REDIS_URL"], "PATH": ""})
    assert result.returncode == 2
    assert "wa-gateway keys generate" in result.stderr
