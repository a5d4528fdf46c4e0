from __future__ import annotations

import pytest

from app import keys
from app.api_keys import ApiKeyRegistry, digest, key_id

pytestmark = pytest.mark.any_redis

ENV_KEY = "env-key-0123456789abcdef"


def test_environment_keys_verify_and_are_kept_only_as_digests(redis_client):
    registry = ApiKeyRegistry(redis_client, f"{ENV_KEY}, short, ")
    assert registry.verify(ENV_KEY) == key_id(digest(ENV_KEY))
    assert registry.verify("short") is None
    assert registry.verify("another-key-0123456789") is None
    assert ENV_KEY not in repr(vars(registry))


def test_created_keys_are_shown_once_and_stored_hashed(redis_client):
    registry = ApiKeyRegistry(redis_client)
    api_key, secret = registry.create("billing service")
    assert secret.startswith("wag_") and len(secret) > 40
    assert registry.verify(secret) == api_key.id
    stored = str(redis_client.hgetall(keys.API_KEYS)) + str(
        redis_client.hgetall(keys.API_KEY_DIGESTS)
    )
    assert secret not in stored
    assert [k.label for k in registry.list()] == ["billing service"]


def test_revocation_takes_effect_in_every_process_at_once(redis_client):
    first, second = ApiKeyRegistry(redis_client, ENV_KEY), ApiKeyRegistry(redis_client, ENV_KEY)
    api_key, secret = first.create("crm")
    assert second.verify(secret) == api_key.id
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

    created = run("create", "--label", "crm")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    listed = run("list")
    assert key not in listed.stdout and '"label": "crm"' in listed.stdout
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
