from __future__ import annotations

import os
import re
import subprocess

import pytest

from app.config import ConfigError, load_settings
from tests.stack import BIN, ROOT, TEST_CREDENTIALS, RedisServer, start_worker, wait_for

GOOD = {**TEST_CREDENTIALS, "REDIS_URL": "redis://:hunter2-password@127.0.0.1:6390/0"}


def test_good_environment_loads_with_defaults():
    settings = load_settings(GOOD, env_file=None)
    assert settings.api_base_url == "https://graph.facebook.com"
    assert settings.api_version == "v23.0"
    assert settings.messages_url == "https://graph.facebook.com/v23.0/106540352242922/messages"


@pytest.mark.parametrize(
    "name",
    [
        "WHATSAPP_ACCESS_TOKEN",
        "WHATSAPP_PHONE_NUMBER_ID",
        "WHATSAPP_BUSINESS_ACCOUNT_ID",
        "WHATSAPP_WEBHOOK_VERIFY_TOKEN",
        "WHATSAPP_WEBHOOK_SECRET",
        "REDIS_URL",
    ],
)
def test_each_missing_variable_is_named(name):
    env = {k: v for k, v in GOOD.items() if k != name}
    with pytest.raises(ConfigError) as info:
        load_settings(env, env_file=None)
    assert f"{name} is missing" in str(info.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WHATSAPP_PHONE_NUMBER_ID", "not-a-number"),
        ("WHATSAPP_API_BASE_URL", "ftp://graph.facebook.com"),
        ("WHATSAPP_API_BASE_URL", "https://graph.facebook.com/v23.0"),
        ("WHATSAPP_API_VERSION", "latest"),
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("WHATSAPP_ACCESS_TOKEN", "has a space in it"),
        ("WHATSAPP_WEBHOOK_SECRET", "k3y"),
    ],
)
def test_malformed_values_are_named_and_never_echoed(name, value):
    with pytest.raises(ConfigError) as info:
        load_settings({**GOOD, name: value}, env_file=None)
    message = str(info.value)
    assert name in message
    assert value not in message


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        load_settings({}, env_file=None)
    assert len(info.value.problems) == 6


def test_env_file_is_read_and_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "".join(f"{k}={v}\n" for k, v in GOOD.items()) + "WHATSAPP_API_VERSION=v22.0\n"
    )
    assert load_settings({}, env_file=str(env_file)).api_version == "v22.0"
    assert (
        load_settings({"WHATSAPP_API_VERSION": "v24.0"}, env_file=str(env_file)).api_version
        == "v24.0"
    )


def test_masked_and_repr_hide_every_secret():
    settings = load_settings(GOOD, env_file=None)
    shown = str(settings.masked()) + repr(settings)
    for secret in (
        GOOD["WHATSAPP_ACCESS_TOKEN"],
        GOOD["WHATSAPP_WEBHOOK_SECRET"],
        GOOD["WHATSAPP_WEBHOOK_VERIFY_TOKEN"],
        "hunter2-password",
    ):
        assert secret not in shown
    assert settings.masked()["WHATSAPP_PHONE_NUMBER_ID"] == "106540352242922"


def test_config_check_command(tmp_path):
    ok = subprocess.run(
        [str(BIN / "wa-gateway"), "config", "check"],
        env={**GOOD, "PATH": ""},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    assert GOOD["WHATSAPP_ACCESS_TOKEN"] not in ok.stdout
    assert '"WHATSAPP_PHONE_NUMBER_ID": "106540352242922"' in ok.stdout
    bad = subprocess.run(
        [str(BIN / "wa-gateway"), "config", "check"],
        env={"WHATSAPP_ACCESS_TOKEN": "x y z secret"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert bad.returncode == 2
    assert "WHATSAPP_WEBHOOK_SECRET is missing" in bad.stderr
    assert "x y z secret" not in bad.stderr + bad.stdout


def test_a_worker_configured_only_by_dotenv_consumes_from_that_redis(tmp_path):
    """Celery's broker comes from the one settings object, so ``.env`` reaches it too: without
    it a worker would fall back to amqp://localhost (a RabbitMQ, where one runs)."""
    import workers

    server = RedisServer(appendonly=False).start()
    dotenv = {
        **TEST_CREDENTIALS,
        "REDIS_URL": server.url,
        "WHATSAPP_API_BASE_URL": "http://127.0.0.1:9",
    }
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in dotenv.items()))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WHATSAPP_", "REDIS_", "CELERY_", "GATEWAY_"))
    }
    worker = start_worker(env, queues="alerts", concurrency=1, name="dotenv", cwd=tmp_path)
    try:
        assert re.search(rf"transport: +redis://\S*127\.0\.0\.1:{server.port}/0", worker.output())
        with workers.app.connection_for_write(server.url) as connection:
            result = workers.app.send_task("alerts.evaluate", queue="alerts", connection=connection)
        wait_for(lambda: f"{result.id}] succeeded" in worker.output(), timeout=30)
        assert server.client().llen("alerts") == 0
    finally:
        worker.stop()
        server.close()


def test_no_module_but_the_settings_reads_the_environment():
    """Configuration has one reader; the places listed hand an environment to child processes."""
    hands_on = {
        ("app/devstack.py", "env = dict(os.environ)"),
        (
            "app/cli.py",
            "argv, env = flower_command(args.address, args.port, get_settings(), os.environ)",
        ),
    }
    readers = []
    files = [
        ROOT / "celeryconfig.py",
        *(p for d in ("app", "tasks", "workers") for p in (ROOT / d).rglob("*.py")),
    ]
    for path in files:
        relative = str(path.relative_to(ROOT))
        if relative == "app/config.py":
            continue
        for line in path.read_text().splitlines():
            if re.search(r"\bos\.(environ|getenv)\b|\bgetenv\(", line):
                if (relative, line.strip()) not in hands_on:
                    readers.append(f"{relative}: {line.strip()}")
    assert readers == []
