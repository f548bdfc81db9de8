"""CLI commands of this concern (see service/cli/__init__.py for the contract).

``labsentinel dlq list|show|reprocess``: the dead-letter store for operators, the same
queries as the API's /api/v1/dead-letters. ``show --raw`` prints the message (it may hold PHI:
it goes to the operator's terminal only, never to logs).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from service.runtime.settings import Settings

COMMANDS: tuple[str, ...] = ("dlq",)


def register(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    config_args: Callable[[argparse.ArgumentParser], None],
) -> None:
    dlq = sub.add_parser("dlq", help="dead letters: list, show, reprocess")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = dlq_sub.add_parser("list", help="newest first, without message text")
    config_args(listing)
    listing.add_argument("--status", choices=("new", "reprocessed", "dead"))
    listing.add_argument("--error-class", choices=("parse", "unit", "processing"))
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    show = dlq_sub.add_parser("show", help="one dead letter: reason, source, offset")
    config_args(show)
    show.add_argument("id", type=int)
    show.add_argument("--raw", action="store_true", help="also print the HL7 (may hold PHI)")
    again = dlq_sub.add_parser("reprocess", help="run dead letters through the pipeline again")
    config_args(again)
    again.add_argument("ids", type=int, nargs="+")


def handle(args: argparse.Namespace, settings: Settings) -> int:
    if args.command != "dlq":
        raise AssertionError(f"unhandled command {args.command}")
    # Imported here to keep the CLI's start-up light: only `dlq` needs the API's queries.
    from service.api import ApiContext
    from service.api.views import dead_letters as queries
    from service.bootstrap import build_app

    app = build_app(settings)
    ctx = ApiContext(
        settings=settings, engine=app.engine, clinical=app.clinical, pipeline=app.pipeline
    )
    try:
        if args.dlq_command == "list":
            items, total = queries.list_dead_letters(
                ctx, status=args.status, error_class=args.error_class, limit=args.limit
            )
            for d in items:
                if args.json:
                    print(json.dumps(d, sort_keys=True))
                else:
                    where = f"{d['topic']}:{d['partition']}:{d['offset']}"
                    print(
                        f"{d['id']:>6}  {d['status']:<11} {d['error_class']:<10} {where:<30} "
                        f"{d['reason'][:80]}"
                    )
            if not args.json:
                print(f"{len(items)} of {total} dead letters")
            return 0
        if args.dlq_command == "show":
            doc = queries.dead_letter_detail(ctx, args.id, include_raw=args.raw)
            if doc is None:
                print(f"labsentinel: no dead letter {args.id}")
                return 1
            raw = doc.pop("raw", None)
            for key, value in doc.items():
                print(f"{key:>15}: {value}")
            if raw is not None:
                print(raw.replace("\r", "\n"))
            return 0
        failures = 0
        for dl_id in args.ids:
            try:
                result = queries.reprocess_dead_letter(ctx, dl_id, ctx.clock.now())
            except LookupError:
                print(f"{dl_id}: no such dead letter")
                failures += 1
                continue
            print(
                f"{dl_id}: {result.outcome} ({result.notifications} notifications) -> "
                f"{result.status}{': ' + result.reason if result.reason else ''}"
            )
            failures += result.outcome == "dead_letter"
        return 1 if failures else 0
    finally:
        app.close()
