"""CLI commands of this concern (see service/cli/__init__.py for the contract).

``labsentinel dlq list|show|reprocess``: the dead-letter store for operators, the same
search as the API's /api/v1/dead-letters and the browser (``--reason``, ``--message-type``,
``--since``, ``--until``, ``--control-id``, ``-q``), and the same bounded, idempotent bulk
reprocess (by ids or by a search, ``--dry-run`` to count first). ``show --raw`` prints the
message (it may hold PHI: it goes to the operator's terminal only, never to logs).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from service.runtime.settings import ConfigError, Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from service.api.views.dead_letter_search import DeadLetterFilter

# The search keys, as the API names them (``dead_letter_search.FILTER_KEYS``; importing it
# here would load the web stack for every command's start-up: tests/cli check they agree).
FILTER_KEYS = ("status", "reason", "message_type", "since", "until", "control_id", "q")

COMMANDS: tuple[str, ...] = ("dlq",)


def _filter_args(parser: argparse.ArgumentParser) -> None:
    """The search keys of the API's /dead-letters and the browser's form."""
    parser.add_argument("--status", help="new, reprocessed or dead")
    parser.add_argument(
        "--reason",
        "--error-class",
        dest="reason",
        help="reason class: parse, unit, value, size, processing or unrecorded "
        "(--error-class is its older name)",
    )
    parser.add_argument("--message-type", help="MSH-9: ORU, or ORU^R01")
    parser.add_argument(
        "--since", help="arrived at or after this ISO time (local to hospital.timezone)"
    )
    parser.add_argument("--until", help="arrived before this ISO time")
    parser.add_argument("--control-id", help="MSH-10, exact")
    parser.add_argument("-q", "--text", dest="q", help="text in the reason or the control id")


def register(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    config_args: Callable[[argparse.ArgumentParser], None],
) -> None:
    dlq = sub.add_parser("dlq", help="dead letters: search, show, reprocess")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = dlq_sub.add_parser(
        "list", help="search, newest first, without message text; counts by reason"
    )
    config_args(listing)
    _filter_args(listing)
    listing.add_argument("--limit", type=int, default=50, help="at most this many rows (50)")
    listing.add_argument("--offset", type=int, default=0, help="skip this many rows first")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    show = dlq_sub.add_parser("show", help="one dead letter: reason, source, offset")
    config_args(show)
    show.add_argument("id", type=int, help="the dead letter's id (from `dlq list`)")
    show.add_argument("--raw", action="store_true", help="also print the HL7 (may hold PHI)")
    again = dlq_sub.add_parser(
        "reprocess",
        help="run dead letters through the pipeline again, by id or by a search (--filter)",
    )
    config_args(again)
    again.add_argument("ids", type=int, nargs="*", help="dead letter ids; or use a search")
    _filter_args(again)
    again.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a search key as the API names it (reason, message_type, since, until, "
        "control_id, q, status); repeatable",
    )
    again.add_argument(
        "--dry-run", action="store_true", help="only count what would run; change nothing"
    )


def _search_values(args: argparse.Namespace) -> dict[str, str | None]:
    values: dict[str, str | None] = {k: getattr(args, k, None) for k in FILTER_KEYS}
    for item in getattr(args, "filter", []):
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--filter {item!r}: expected KEY=VALUE")
        values[key.strip()] = value
    return values


def handle(args: argparse.Namespace, settings: Settings) -> int:
    if args.command != "dlq":
        raise AssertionError(f"unhandled command {args.command}")
    # Imported here to keep the CLI's start-up light: only `dlq` needs the API's queries.
    from service.api import ApiContext
    from service.api.views.dead_letter_search import FilterError, build_filter
    from service.bootstrap import build_app, open_database

    try:
        where = build_filter(_search_values(args), settings.hospital.zone)
    except FilterError as exc:
        raise ConfigError(str(exc)) from None
    if args.dlq_command != "reprocess":
        # Reading needs no pipeline, and must not migrate (or create) a database.
        engine = open_database(settings, migrate=False)
        try:
            if args.dlq_command == "list":
                return _list(engine, where, args)
            return _show(engine, settings, args)
        finally:
            engine.dispose()
    if bool(args.ids) == (not where.is_empty()):
        raise ConfigError("dlq reprocess: give ids or a search (--reason, --filter ...), not both")
    app = build_app(settings)
    ctx = ApiContext(
        settings=settings, engine=app.engine, clinical=app.clinical, pipeline=app.pipeline
    )
    try:
        return _reprocess(ctx, where, args)
    finally:
        app.close()


def _list(engine: Engine, where: DeadLetterFilter, args: argparse.Namespace) -> int:
    from service.api.views.dead_letter_search import reason_counts, search

    items, total = search(engine, where, limit=args.limit, offset=args.offset)
    for d in items:
        if args.json:
            print(json.dumps(d, sort_keys=True))
            continue
        origin = f"{d['topic']}:{d['partition']}:{d['offset']}"
        print(
            f"{d['id']:>6}  {d['created_at'][:19]}  {d['status']:<11} {d['error_class']:<10} "
            f"{d['control_id'][:20]:<20} {origin:<24} {d['reason'][:70]}"
        )
    if not args.json:
        counts = reason_counts(engine, where)["classes"]
        by_reason = ", ".join(f"{c['reason']} {c['count']}" for c in counts) or "none"
        print(f"{len(items)} of {total} dead letters (by reason: {by_reason})")
    return 0


def _show(engine: Engine, settings: Settings, args: argparse.Namespace) -> int:
    from service.api import ApiContext
    from service.api.views.dead_letters import dead_letter_detail
    from service.bootstrap import build_clinical

    ctx = ApiContext(settings=settings, engine=engine, clinical=build_clinical(settings))
    doc = dead_letter_detail(ctx, args.id, include_raw=args.raw)
    if doc is None:
        print(f"labsentinel: no dead letter {args.id}", file=sys.stderr)
        return 1
    raw = doc.pop("raw", None)
    for key, value in doc.items():
        print(f"{key:>15}: {value}")
    if raw is not None:
        print(raw.replace("\r", "\n"))
    return 0


def _reprocess(ctx: Any, where: DeadLetterFilter, args: argparse.Namespace) -> int:
    from service.api.views.dead_letter_bulk import TooMany, reprocess_many

    try:
        if args.ids:
            result = reprocess_many(ctx, ctx.clock.now(), ids=args.ids, dry_run=args.dry_run)
        else:
            result = reprocess_many(ctx, ctx.clock.now(), where=where, dry_run=args.dry_run)
    except TooMany as exc:
        raise ConfigError(f"dlq reprocess: {exc}") from None
    for r in result.results:
        reason = f": {r['reason']}" if r["reason"] else ""
        print(
            f"{r['id']}: {r['outcome']} ({r['notifications']} notifications) -> "
            f"{r['status']}{reason}"
        )
    for skipped in result.skipped:
        print(f"{skipped['id']}: skipped, already {skipped['status']}")
    for missing in result.missing:
        print(f"{missing}: no such dead letter")
    more = f"; {result.remaining} more match (run again)" if result.remaining else ""
    if args.dry_run:
        print(
            f"dry run: {result.selected} would be reprocessed, {len(result.skipped)} skipped, "
            f"{len(result.missing)} missing{more}"
        )
        return 0
    print(
        f"reprocessed {result.selected}: {result.reprocessed} stored or ignored, "
        f"{result.failed_again} failed again, {len(result.skipped)} skipped, "
        f"{len(result.missing)} missing{more}"
    )
    return 1 if result.failed_again or result.missing else 0
