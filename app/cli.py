"""The ``wa-gateway`` command."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

import requests

from app.config import ConfigError, load_settings

DEFAULT_SIMULATOR_PORT = 8025
"""Where ``wa-gateway simulator`` listens unless told otherwise."""


def main(argv: list[str] | None = None) -> int:
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
        "--port", type=int, default=int(os.environ.get("SIMULATOR_PORT", DEFAULT_SIMULATOR_PORT))
    )
    sim.add_argument(
        "--webhook-url",
        default=os.environ.get("SIMULATOR_WEBHOOK_URL"),
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
        default=os.environ.get("SIMULATOR_FAULTS", ""),
        help="initial faults as JSON, e.g. '{\"error_rate\": 0.1}'",
    )
    sim.set_defaults(func=_simulator_serve)
    sim_commands = sim.add_subparsers(dest="simulator_command")
    say = sim_commands.add_parser("say", help="a simulated customer sends a text message")
    say.add_argument("--from", dest="wa_id", default="573001234567", help="the customer's number")
    say.add_argument("--name", default="Customer")
    say.add_argument("--url", default=None, help="the simulator's base URL")
    say.add_argument("text")
    say.set_defaults(func=_simulator_say)

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
    from werkzeug.serving import run_simple

    from app.simulator.server import Faults, SimulatorConfig, create_simulator

    missing = [
        n
        for n in ("WHATSAPP_ACCESS_TOKEN", "WHATSAPP_WEBHOOK_SECRET", "WHATSAPP_PHONE_NUMBER_ID")
        if not os.environ.get(n)
    ]
    if missing:
        print("the simulator needs " + ", ".join(missing), file=sys.stderr)
        return 2
    config = SimulatorConfig(
        access_token=os.environ["WHATSAPP_ACCESS_TOKEN"],
        webhook_secret=os.environ["WHATSAPP_WEBHOOK_SECRET"],
        phone_number_id=os.environ["WHATSAPP_PHONE_NUMBER_ID"],
        webhook_url=args.webhook_url,
    )
    if args.status_delay is not None:
        config.status_delay = args.status_delay
    faults = Faults()
    if args.faults:
        faults.update(json.loads(args.faults))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    print(
        f"simulator listening on http://{args.host}:{args.port} "
        f"(webhooks to {args.webhook_url or 'nowhere'})",
        flush=True,
    )
    run_simple(args.host, args.port, create_simulator(config, faults), threaded=True)
    return 0


def _simulator_say(args: argparse.Namespace) -> int:
    base = args.url or f"http://127.0.0.1:{args.port}"
    response = requests.post(
        f"{base}/_sim/customers/{args.wa_id}/messages",
        json={"text": args.text, "name": args.name},
        timeout=15,
    )
    print(json.dumps(response.json()))
    return 0 if response.ok else 1


if __name__ == "__main__":
    sys.exit(main())
