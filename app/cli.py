"""The ``wa-gateway`` command."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from dataclasses import asdict

import requests

from app.api_keys import SCOPES as API_KEY_SCOPES
from app.api_keys import ApiKeyRegistry
from app.config import ConfigError, get_settings, load_settings
from app.credentials import CredentialError
from app.errors import EventError


def main(argv: list[str] | None = None) -> int:
    try:
        settings = get_settings()
    except ConfigError as exc:
        if (sys.argv[1:] if argv is None else argv)[:2] == ["config", "check"]:
            return _config_check(argparse.Namespace())  # names the missing variables too
        print(exc, file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="wa-gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run", help="run every Procfile process (and a sandbox if unconfigured)"
    )
    run.add_argument("--no-demo", action="store_true", help="do not play the demo conversation")
    run.set_defaults(func=_run)

    config = commands.add_parser("config", help="configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser(
        "check", help="validate and print the effective configuration"
    )
    check.set_defaults(func=_config_check)

    sim = commands.add_parser("simulator", help="run the Cloud API simulator, or act as a customer")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument(
        "--port", type=int, default=settings.simulator_port
    )
    sim.add_argument(
        "--webhook-url",
        default=settings.simulator_webhook_url or None,
        help="the gateway's webhook URL, where statuses and customer messages go",
    )
    sim.add_argument(
        "--status-delay",
        type=float,
        default=None,
        help="seconds between sent, delivered and read statuses",
    )
    sim.add_argument(
        "--faults",
        default=settings.simulator_faults,
        help="initial faults as JSON, e.g. '{\"error_rate\": 0.1}'",
    )
    sim.add_argument(
        "--latency-ms",
        type=float,
        default=settings.simulator_latency_ms,
        help="median delay of each send and media call, lognormal (0 = answer at once)",
    )
    sim.add_argument(
        "--latency-p99-ms",
        type=float,
        default=settings.simulator_latency_p99_ms,
        help="99th percentile of that delay",
    )
    sim.add_argument(
        "--throughput",
        type=float,
        default=None,
        help="messages/s one number may send before error 130429 (default 80; 0 = no limit)",
    )
    sim.add_argument(
        "--no-pair-limit",
        action="store_true",
        help="do not apply Meta's per-recipient limit (error 131056)",
    )
    sim.add_argument(
        "--no-window",
        action="store_true",
        help="do not refuse free-form messages outside the 24-hour window (error 131047)",
    )
    sim.add_argument(
        "--not-on-whatsapp",
        default=settings.simulator_not_on_whatsapp,
        help="comma-separated numbers that have no WhatsApp account (error 131026)",
    )
    sim.add_argument(
        "--refusals-as-statuses",
        action="store_true",
        help="report 131026 and 131047 as failed status webhooks instead of refusing the send",
    )
    sim.add_argument(
        "--media-url-ttl",
        type=float,
        default=None,
        help="seconds a media download URL stays valid (default 300)",
    )
    sim.set_defaults(func=_simulator_serve)
    sim_commands = sim.add_subparsers(dest="simulator_command")
    say = sim_commands.add_parser("say", help="a simulated customer sends a text message")
    say.add_argument("--from", dest="wa_id", default="573001234567", help="the customer's number")
    say.add_argument("--name", default="Customer")
    say.add_argument("--username", default=None, help="the customer's WhatsApp username")
    say.add_argument(
        "--hide-phone",
        action="store_true",
        help="the customer hides their number: webhooks name them by BSUID (and username) only",
    )
    say.add_argument("--url", default=None, help="the simulator's base URL")
    say.add_argument("text")
    say.set_defaults(func=_simulator_say)

    numbers = commands.add_parser("numbers", help="sending numbers and their encrypted tokens")
    numbers_commands = numbers.add_subparsers(dest="numbers_command", required=True)
    add = numbers_commands.add_parser(
        "add", help="add or replace a number; the token is read from standard input or a prompt"
    )
    add.add_argument("phone_number_id")
    add.add_argument("--display-phone-number", default="")
    add.add_argument("--business-account-id", default="")
    add.set_defaults(func=_numbers_add)
    numbers_commands.add_parser("list", help="list numbers (never tokens)").set_defaults(
        func=_numbers_list
    )
    remove = numbers_commands.add_parser("remove", help="forget a number and its token")
    remove.add_argument("phone_number_id")
    remove.set_defaults(func=_numbers_remove)

    keys_parser = commands.add_parser("keys", help="encryption keys for stored tokens")
    keys_commands = keys_parser.add_subparsers(dest="keys_command", required=True)
    keys_commands.add_parser("generate", help="print a new Fernet key").set_defaults(
        func=_keys_generate
    )
    keys_commands.add_parser(
        "rotate",
        help="re-encrypt every stored token under the first key of GATEWAY_ENCRYPTION_KEYS",
    ).set_defaults(func=_keys_rotate)

    apikeys = commands.add_parser("apikeys", help="API keys of the /v1 API (kept as digests)")
    apikeys_commands = apikeys.add_subparsers(dest="apikeys_command", required=True)
    create = apikeys_commands.add_parser("create", help="create a key; it is printed once")
    create.add_argument("--label", required=True, help="who or what the key is for")
    create.add_argument(
        "--scope",
        dest="scopes",
        action="append",
        required=True,
        choices=API_KEY_SCOPES,
        help="what the key may do; repeat for several (admin: everything)",
    )
    create.add_argument(
        "--number",
        dest="numbers",
        action="append",
        default=[],
        metavar="PHONE_NUMBER_ID",
        help="a sending number the key may use; repeat for several (default: any number)",
    )
    create.set_defaults(func=_apikeys_create)
    apikeys_commands.add_parser("list", help="list keys by id (never the keys)").set_defaults(
        func=_apikeys_list
    )
    revoke = apikeys_commands.add_parser("revoke", help="refuse a key from now on, everywhere")
    revoke.add_argument("key_id")
    revoke.set_defaults(func=_apikeys_revoke)

    templates = commands.add_parser("templates", help="the account's message templates")
    templates_commands = templates.add_subparsers(dest="templates_command", required=True)
    templates_commands.add_parser(
        "sync", help="replace the kept templates with the account's (Graph API, every page)"
    ).set_defaults(func=_templates_sync)
    templates_commands.add_parser("list", help="list the kept templates").set_defaults(
        func=_templates_list
    )

    flower = commands.add_parser("flower", help="run Flower, refusing to run it without basic auth")
    flower.add_argument("--address", default=settings.flower_address)
    flower.add_argument("--port", type=int, default=settings.flower_port)
    flower.set_defaults(func=_flower)

    from app.dead_letter_cli import add_commands as add_dlq_commands

    add_dlq_commands(commands)

    args = parser.parse_args(argv)
    return args.func(args) or 0


def _config_check(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(json.dumps(settings.masked(), indent=2))
    return 0


def _run(args: argparse.Namespace) -> int:
    from app.devstack import run_stack

    return run_stack(demo=not args.no_demo)


def _simulator_serve(args: argparse.Namespace) -> int:
    from app.simulator.server import Faults, SimulatorConfig, serve

    settings = get_settings()
    needed = {
        "WHATSAPP_ACCESS_TOKEN": settings.access_token,
        "WHATSAPP_WEBHOOK_SECRET": settings.webhook_secret,
        "WHATSAPP_PHONE_NUMBER_ID": settings.phone_number_id,
    }
    missing = [name for name, value in needed.items() if not value]
    if missing:
        print("the simulator needs " + ", ".join(missing), file=sys.stderr)
        return 2
    config = SimulatorConfig(
        access_token=settings.access_token,
        webhook_secret=settings.webhook_secret,
        phone_number_id=settings.phone_number_id,
        webhook_url=args.webhook_url,
    )
    if args.status_delay is not None:
        config.status_delay = args.status_delay
    if args.throughput is not None:
        config.throughput_per_second = args.throughput
    if args.media_url_ttl is not None:
        config.media_url_ttl = args.media_url_ttl
    config.pair_limit = not args.no_pair_limit
    config.enforce_window = not args.no_window
    config.refusals_as_statuses = args.refusals_as_statuses
    config.not_on_whatsapp = {n.strip() for n in args.not_on_whatsapp.split(",") if n.strip()}
    faults = Faults()
    try:
        faults.update(latency_model(args.latency_ms, args.latency_p99_ms))
    except ValueError as exc:
        print(f"--latency-ms, --latency-p99-ms: {exc}", file=sys.stderr)
        return 2
    try:
        faults.update(json.loads(args.faults) if args.faults else {})
    except ValueError as exc:
        print(f"--faults: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("waitress").setLevel(logging.WARNING)
    print(
        f"simulator listening on http://{args.host}:{args.port} "
        f"(webhooks to {args.webhook_url or 'nowhere'})",
        flush=True,
    )
    serve(config, faults, args.host, args.port)
    return 0


def latency_model(median_ms: float, p99_ms: float) -> dict[str, float | str]:
    """The simulator's faults for Meta's answer times: lognormal, ``median_ms`` in the middle and
    ``p99_ms`` at the 99th percentile (none at all when the median is 0)."""
    if median_ms < 0 or p99_ms < median_ms:
        raise ValueError("the latency's p99 must be at least its median, and both at least 0")
    if not median_ms:
        return {"latency_ms": 0.0, "latency_jitter_ms": 0.0}
    return {
        "latency_ms": median_ms,
        "latency_jitter_ms": p99_ms - median_ms,
        "latency_distribution": "lognormal",
    }


def _simulator_say(args: argparse.Namespace) -> int:
    base = args.url or f"http://127.0.0.1:{args.port}"
    message = {"text": args.text, "name": args.name, "hide_phone": args.hide_phone}
    if args.username:
        message["username"] = args.username
    response = requests.post(
        f"{base}/_sim/customers/{args.wa_id}/messages", json=message, timeout=15
    )
    print(json.dumps(response.json()))
    return 0 if response.ok else 1


def _redis_from_env():
    from app.db import get_redis

    redis_url = get_settings().redis_url
    if not redis_url:
        raise CredentialError("REDIS_URL is missing")
    return get_redis(redis_url)


def _registry():
    from app.credentials import NumberRegistry, load_cipher

    return NumberRegistry(_redis_from_env(), load_cipher())


def _credential_command(func):
    """Run a credentials command, turning expected failures into a message and exit status 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (CredentialError, EventError) as exc:  # EventError: a secret no key decrypts
            print(exc, file=sys.stderr)
            return 2

    return run


@_credential_command
def _numbers_add(args: argparse.Namespace) -> int:
    from app.credentials import SendingNumber

    registry = _registry()
    if sys.stdin.isatty():
        token = getpass.getpass("access token: ")
    else:
        token = sys.stdin.readline()
    number = registry.add(
        SendingNumber(args.phone_number_id, args.display_phone_number, args.business_account_id),
        token.strip(),
    )
    print(f"stored {number.phone_number_id} (token encrypted)")
    return 0


@_credential_command
def _numbers_list(args: argparse.Namespace) -> int:
    for number in _registry().list():
        print(json.dumps(asdict(number)))
    return 0


@_credential_command
def _numbers_remove(args: argparse.Namespace) -> int:
    if _registry().remove(args.phone_number_id):
        print(f"removed {args.phone_number_id}")
        return 0
    print(f"{args.phone_number_id} is not registered", file=sys.stderr)
    return 1


def _api_key_registry() -> ApiKeyRegistry:
    return ApiKeyRegistry(_redis_from_env(), get_settings().api_keys)


@_credential_command
def _apikeys_create(args: argparse.Namespace) -> int:
    try:
        api_key, key = _api_key_registry().create(args.label, args.scopes, args.numbers)
    except ValueError as refused:
        print(f"apikeys create: {refused}", file=sys.stderr)
        return 2
    print(f"created key {api_key.id} ({api_key.label}); it is shown only now:", file=sys.stderr)
    print(key)
    return 0


@_credential_command
def _apikeys_list(args: argparse.Namespace) -> int:
    for api_key in _api_key_registry().list():
        print(json.dumps(asdict(api_key)))
    return 0


@_credential_command
def _apikeys_revoke(args: argparse.Namespace) -> int:
    if _api_key_registry().revoke(args.key_id):
        print(f"revoked {args.key_id}")
        return 0
    print(f"no key has the id {args.key_id}", file=sys.stderr)
    return 1


def _keys_generate(args: argparse.Namespace) -> int:
    from app.credentials import generate_key

    print(generate_key())
    return 0


@_credential_command
def _keys_rotate(args: argparse.Namespace) -> int:
    from app.credentials import load_cipher
    from app.events.subscriptions import SubscriptionStore

    print(f"re-encrypted {_registry().rotate()} token(s) under the newest key")
    secrets = SubscriptionStore(_redis_from_env(), load_cipher()).rotate()
    print(f"re-encrypted {secrets} event subscription secret(s) under the newest key")
    return 0


def _templates_sync(args: argparse.Namespace) -> int:
    from app.clients import client_for
    from app.templates import TemplateStore, sync
    from app.whatsapp.errors import WhatsAppError

    settings = get_settings()
    client = client_for(settings)
    try:
        templates = sync(
            TemplateStore(_redis_from_env()),
            lambda after: client.list_templates(settings.business_account_id, after),
        )
    except (WhatsAppError, CredentialError) as exc:
        print(f"templates not synced: {exc}", file=sys.stderr)
        return 2
    print(f"{len(templates)} templates synced")
    return 0


def _templates_list(args: argparse.Namespace) -> int:
    from app.templates import TemplateStore

    for template in TemplateStore(_redis_from_env()).all():
        print(f"{template.name}\t{template.language}\t{template.status}\t{template.category}")
    return 0


def _flower(args: argparse.Namespace) -> int:
    from app.ops.flower import FlowerConfigError, flower_command

    try:
        argv, env = flower_command(args.address, args.port, get_settings(), os.environ)
    except FlowerConfigError as exc:
        print(f"flower: {exc}", file=sys.stderr)
        return 2
    os.execvpe(argv[0], argv, env)
    return 0  # not reached: exec replaces this process


if __name__ == "__main__":
    sys.exit(main())
