from __future__ import annotations

import json

import pytest

from app import keys
from app.api_keys import ADMIN, ApiKey, ApiKeyRegistry, digest, key_id

pytestmark = pytest.mark.any_redis

ENV_KEY = "env-key-0123456789abcdef"


def test_environment_keys_verify_and_are_kept_only_as_digests(redis_client):
    registry = ApiKeyRegistry(redis_client, f"{ENV_KEY}, short, ")
    assert registry.verify(ENV_KEY).id == key_id(digest(ENV_KEY))
    assert registry.verify("short") is None
    assert registry.verify("another-key-0123456789") is None
    assert ENV_KEY not in repr(vars(registry))


def test_created_keys_are_shown_once_and_stored_hashed(redis_client):
    registry = ApiKeyRegistry(redis_client)
    api_key, secret = registry.create("billing service", ["send"])
    assert secret.startswith("wag_") and len(secret) > 40
    assert registry.verify(secret).id == api_key.id
    stored = str(redis_client.hgetall(keys.API_KEYS)) + str(
        redis_client.hgetall(keys.API_KEY_DIGESTS)
    )
    assert secret not in stored
    assert [k.label for k in registry.list()] == ["billing service"]


def test_revocation_takes_effect_in_every_process_at_once(redis_client):
    first, second = ApiKeyRegistry(redis_client, ENV_KEY), ApiKeyRegistry(redis_client, ENV_KEY)
    api_key, secret = first.create("crm", ["read"])
    assert second.verify(secret).id == api_key.id
    assert first.revoke(api_key.id)
    assert second.verify(secret) is None
    assert first.revoke(key_id(digest(ENV_KEY)))
    assert second.verify(ENV_KEY) is None
    assert not first.revoke("nope")
    assert {k.id: k.revoked for k in second.list()} == {
        key_id(digest(ENV_KEY)): True,
        api_key.id: True,
    }


@pytest.mark.real_redis(
    reason="the CLI runs as a child process, which only a real server can share"
)
def test_cli_create_list_revoke_and_the_api_follows(redis_client, tmp_path):
    import os
    import subprocess

    from app.config import get_settings
    from app.web import create_app
    from tests.stack import BIN

    env = {"REDIS_URL": os.environ["REDIS_URL"], "PATH": "", "GATEWAY_API_KEYS": ENV_KEY}

    def run(*argv):
        return subprocess.run(
            [str(BIN / "wa-gateway"), "apikeys", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )

    assert "--scope" in run("create", "--label", "crm").stderr  # no scope: refused
    created = run("create", "--label", "crm", "--scope", "read")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    listed = run("list")
    assert key not in listed.stdout and '"label": "crm"' in listed.stdout
    assert '"scopes": ["read"]' in listed.stdout
    key_id_ = [line for line in listed.stdout.splitlines() if "crm" in line][0].split('"id": "')[1][
        :12
    ]

    client = create_app({"SETTINGS": get_settings(), "GATEWAY_API_KEYS": ENV_KEY}).test_client()
    assert client.get("/v1/alerts", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert run("revoke", key_id_).returncode == 0
    refused = client.get("/v1/alerts", headers={"Authorization": f"Bearer {key}"})
    assert refused.status_code == 401 and refused.json["error"]["code"] == "invalid_api_key"
    assert (
        client.get("/v1/alerts", headers={"Authorization": f"Bearer {ENV_KEY}"}).status_code == 200
    )
    assert run("revoke", "nope").returncode == 1


def test_created_keys_hold_their_scopes_and_numbers(redis_client):
    registry = ApiKeyRegistry(redis_client)
    _, secret = registry.create("shop", ["send", "read", "send"], ["106540352242922"])
    api_key = registry.verify(secret)
    assert api_key.scopes == ("read", "send")
    assert api_key.numbers == ("106540352242922",)
    assert api_key.allows("send") and api_key.allows("read")
    assert not api_key.allows("dead_letters") and not api_key.allows("admin")
    assert api_key.may_use("106540352242922") and not api_key.may_use("999999999")
    listed = registry.list()[0]
    assert (listed.scopes, listed.numbers) == (("read", "send"), ("106540352242922",))


def test_admin_holds_every_scope_and_any_number(redis_client):
    _, secret = ApiKeyRegistry(redis_client).create("ops", [ADMIN])
    api_key = ApiKeyRegistry(redis_client).verify(secret)
    assert all(api_key.allows(scope) for scope in ("send", "read", "dead_letters", "admin"))
    assert api_key.may_use("106540352242922")


@pytest.mark.parametrize(
    "scopes, numbers, refusal",
    [
        ([], [], "at least one scope"),
        (["write"], [], "unknown scope 'write'"),
        (["send"], ["106540352242922\n"], "phone_number_id"),
        (["send"], ["../x"], "phone_number_id"),
        (["dead_letters"], ["106540352242922"], "only send and read"),
        ([ADMIN], ["106540352242922"], "only send and read"),
    ],
)
def test_create_refuses_what_no_key_could_mean(redis_client, scopes, numbers, refusal):
    with pytest.raises(ValueError, match=refusal):
        ApiKeyRegistry(redis_client).create("x", scopes, numbers)
    assert not redis_client.exists(keys.API_KEYS)


def test_environment_keys_have_full_access(redis_client):
    api_key = ApiKeyRegistry(redis_client, ENV_KEY).verify(ENV_KEY)
    assert api_key.scopes == (ADMIN,) and api_key.numbers == ()
    assert ApiKeyRegistry(redis_client, ENV_KEY).list()[0].scopes == (ADMIN,)


def test_a_key_stored_before_scopes_keeps_full_access(redis_client):
    """A record written before keys had scopes (no ``scopes``, no ``numbers``) holds admin."""
    secret = "wag_" + "legacy-key-0123456789abcdef"
    legacy = {
        "id": key_id(digest(secret)),
        "label": "old crm",
        "source": "redis",
        "created_at": 1700000000.0,
        "revoked": False,
        "digest": digest(secret),
    }
    redis_client.hset(keys.API_KEYS, legacy["id"], json.dumps(legacy))
    redis_client.hset(keys.API_KEY_DIGESTS, digest(secret), legacy["id"])
    registry = ApiKeyRegistry(redis_client)
    assert registry.verify(secret) == ApiKey(legacy["id"], "old crm", "redis", 1700000000.0)
    assert registry.verify(secret).scopes == (ADMIN,)
    assert registry.list()[0].scopes == (ADMIN,)
    assert registry.revoke(legacy["id"]) and registry.verify(secret) is None
