"""``wa-gateway flower``: Flower, but never open to anyone without credentials.

Flower shows every task with its arguments (webhook payloads: customers' numbers and messages)
and can revoke tasks, so it refuses to start without ``FLOWER_BASIC_AUTH`` unless it runs in the
local sandbox (``GATEWAY_SANDBOX=1``) on a loopback address.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import sys
from collections.abc import Mapping

from app.config import Settings
from app.errors import ConfigError

MIN_PASSWORD_LENGTH = 12
"""Shorter Flower passwords are refused: basic auth has no lockout against guessing."""

PURGE_OFFLINE_WORKERS = "300"
"""Seconds after which Flower forgets a worker that went offline (Flower's own variable wins)."""


class FlowerConfigError(ConfigError):
    """Flower must not start as configured; the message says what to set."""


def check_basic_auth(value: str) -> None:
    """Raise unless ``value`` is ``user:password[,user:password...]`` with long enough passwords."""
    for pair in value.split(","):
        user, sep, password = pair.strip().partition(":")
        if not sep or not user or not password:
            raise FlowerConfigError("FLOWER_BASIC_AUTH must be user:password[,user:password...]")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise FlowerConfigError(
                f"FLOWER_BASIC_AUTH passwords must have at least {MIN_PASSWORD_LENGTH} characters"
            )


def _is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def flower_command(
    address: str, port: int, settings: Settings, environ: Mapping[str, str]
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment (``environ`` with what Flower must read) that run Flower;
    raises :class:`FlowerConfigError` if unsafe."""
    env = dict(environ)
    basic_auth = settings.flower_basic_auth
    if basic_auth:
        check_basic_auth(basic_auth)
        env["FLOWER_BASIC_AUTH"] = basic_auth  # also when it came from .env: Flower reads it
    elif not settings.sandbox:
        raise FlowerConfigError(
            "Flower needs FLOWER_BASIC_AUTH=user:password (it shows customers' messages); "
            "only the local sandbox (GATEWAY_SANDBOX=1) runs it without"
        )
    elif not _is_loopback(address):
        raise FlowerConfigError(
            "without FLOWER_BASIC_AUTH, Flower may only listen on a loopback address"
        )
    # Flower reads FLOWER_BASIC_AUTH itself: credentials never appear in the process list.
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # Flower's own metrics stay out of the gateway's
    env.setdefault("FLOWER_PURGE_OFFLINE_WORKERS", PURGE_OFFLINE_WORKERS)
    celery = shutil.which("celery", path=os.path.dirname(sys.executable)) or "celery"
    argv = [celery, "-A", "workers", "flower", f"--address={address}", f"--port={port}"]
    return argv, env
