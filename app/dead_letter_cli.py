"""``wa-gateway dlq``: list, show, replay and purge dead letters from a shell."""

from __future__ import annotations

import argparse
import json
import sys
import time

from app.config import ConfigError, load_settings
from app.delivery.dead_letters import DIRECTIONS, REASONS, DeadLetterStore
from app.delivery.messages import MessageStore


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``dlq list|show|replay|purge`` to the ``wa-gateway`` parser."""
    dlq = commands.add_parser("dlq", help="the dead-letter queue")
    verbs = dlq.add_subparsers(dest="dlq_command", required=True)

    def filters(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--reason", choices=REASONS, help="only this reason")
        parser.add_argument("--code", type=int, help="only this Graph error code")
        parser.add_argument(
            "--direction", choices=DIRECTIONS, help="only what came in, what goes out, or events to subscribers"
        )

    listing = verbs.add_parser("list", help="dead letters, most recent failure first")
    filters(listing)
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=_list)

    show = verbs.add_parser("show", help="one dead letter in full, as JSON")
    show.add_argument("id")
    show.set_defaults(func=_show)

    replay = verbs.add_parser(
        "replay", help="send again (same id and idempotency key, attempts reset)"
    )
    replay.add_argument("ids", nargs="*", help="message ids; or use the filters")
    filters(replay)
    replay.add_argument("--all", action="store_true", help="every dead letter")
    replay.add_argument("--limit", type=int, default=None)
    replay.set_defaults(func=_replay)

    purge = verbs.add_parser("purge", help="drop dead letters for good")
    purge.add_argument("ids", nargs="*", help="message ids; or use the filters")
    filters(purge)
    purge.add_argument("--all", action="store_true", help="every dead letter")
    purge.add_argument("--yes", action="store_true", help="needed to purge by filter")
    purge.set_defaults(func=_purge)


def _stores() -> tuple[DeadLetterStore, MessageStore]:
    from app.db import get_redis

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    redis_client = get_redis(settings.redis_url)
    return DeadLetterStore(redis_client), MessageStore(redis_client)


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at))


def _list(args: argparse.Namespace) -> int:
    dead_letters, _ = _stores()
    letters = dead_letters.list(args.reason, args.code, limit=args.limit, direction=args.direction)
    if args.json:
        for letter in letters:
            print(json.dumps(letter.summary()))
        return 0
    print(f"{'id':32}  {'reason':19}  {'code':>6}  {'att':>3}  {'last failure (UTC)':19}  to/kind")
    for letter in letters:
        s = letter.summary()
        print(
            f"{s['id']:32}  {s['reason']:19}  {s['code'] if s['code'] is not None else '-':>6}  "
            f"{s['attempts']:>3}  {_when(s['last_failed_at'])}  {s['to'] or s['kind'] or '-'}"
        )
    print(f"{len(letters)} shown, {len(dead_letters)} dead letters in all")
    return 0


def _show(args: argparse.Namespace) -> int:
    letter = _stores()[0].get(args.id)
    if letter is None:
        print(f"no dead letter {args.id}", file=sys.stderr)
        return 1
    print(json.dumps(letter.to_dict(), indent=2, ensure_ascii=False))
    return 0


def _selection_is_clear(args: argparse.Namespace) -> bool:
    filtered = args.reason or args.code is not None or args.direction
    if args.ids and (filtered or args.all):
        print("give ids or filters, not both", file=sys.stderr)
        return False
    if not args.ids and not (filtered or args.all):
        print("give ids, --reason, --code, --direction or --all", file=sys.stderr)
        return False
    return True


def _replay(args: argparse.Namespace) -> int:
    if not _selection_is_clear(args):
        return 2
    from tasks.enqueue import enqueue_send_message, requeue  # the broker: only to replay

    dead_letters, store = _stores()
    if args.ids:
        replayed = [
            i for i in args.ids if dead_letters.replay(store, i, enqueue_send_message, requeue)
        ]
        missing = sorted(set(args.ids) - set(replayed))
        for message_id in missing:
            print(f"no dead letter {message_id}", file=sys.stderr)
    else:
        replayed = dead_letters.replay_matching(
            store,
            enqueue_send_message,
            args.reason,
            args.code,
            args.limit,
            direction=args.direction,
            enqueue_task=requeue,
        )
        missing = []
    for message_id in replayed:
        print(message_id)
    print(f"{len(replayed)} replayed", file=sys.stderr)
    return 1 if missing else 0


def _purge(args: argparse.Namespace) -> int:
    if not _selection_is_clear(args):
        return 2
    dead_letters, _ = _stores()
    if args.ids:
        purged = sum(dead_letters.remove(i) for i in args.ids)
    elif not args.yes:
        matching = sum(1 for _ in dead_letters.iter(args.reason, args.code, args.direction))
        print(f"{matching} dead letters match; add --yes to purge them", file=sys.stderr)
        return 2
    else:
        purged = dead_letters.purge(args.reason, args.code, args.direction)
    print(f"{purged} purged", file=sys.stderr)
    return 0
