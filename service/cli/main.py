"""The `labsentinel` command line.

Each subcommand validates the settings first and stops with a message naming the key when
they are wrong (exit status 2); operational failures exit 1.

Whatever else a command raises ends as one plain sentence on stderr and exit status 1
(``service.cli.failures``): a database or broker that does not answer names where it was
looked for; anything else the exception's class and a PHI-free summary, never a traceback and
never ``str()`` of a database error, which quotes statements and values.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from service.cli import failures, ingress, ops, paging, reliability, roster
from service.cli.rehearsal import require_rehearsal_database
from service.runtime import logs
from service.runtime.secrets_policy import require_strong_secrets
from service.runtime.settings import ConfigError, Settings, load_settings

EXIT_CONFIG = 2
EXIT_FAILURE = 1

# Subcommand groups, one module per concern: each has ``COMMANDS`` (the top-level command
# names it owns), ``register(subparsers, config_args)`` and ``handle(args, settings) -> int``.
COMMAND_MODULES = (paging, ops, reliability, ingress, roster)
# Commands that read no settings (they bring their own database and broker).
SETTINGS_FREE = ("generate-feed", "demo", "bench")
# Commands that open the database named by database.url, and those of them that may create
# a SQLite database that is not there yet (they migrate it and write what they process).
DATABASE_COMMANDS = ("run", "replay", "db", "dlq", "alerts", "silence", "history", "escalations")
CREATES_DATABASE = ("run", "replay", "db upgrade")


def _config_args(parser: argparse.ArgumentParser, *, database: bool = True) -> None:
    parser.add_argument("--config", type=Path, help="settings TOML (default: the shipped one)")
    if database:
        parser.add_argument("--database-url", help="overrides database.url")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labsentinel",
        description="Pages the care team when phosphate or calcium falls after IV iron in a "
        "patient on an antiresorptive.",
    )
    parser.add_argument("--version", action="version", version=f"labsentinel {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="the daemon: consume Kafka, evaluate, page")
    _config_args(run)
    run.add_argument("--pages-out", type=Path, help="also write every notification as JSON lines")

    replay = sub.add_parser("replay", help="process HL7 files through the pipeline, then page")
    replay.add_argument("files", nargs="+", type=Path, help="files of HL7 messages, in order")
    _config_args(replay)
    replay.add_argument("--pages-out", type=Path, help="write every notification as JSON lines")
    replay.add_argument(
        "--no-deliver",
        action="store_true",
        help="rehearsal: route and record every notification, but send it only to --pages-out "
        "(every configured channel is held), so a production configuration pages nobody; "
        "needs a --database-url of its own, never the live database",
    )
    replay.add_argument(
        "--clock",
        choices=("messages", "wall"),
        default="messages",
        help="'messages' (default): time advances with the message times, so a replay of a "
        "historical feed decides as it would have live; 'wall': the machine clock",
    )
    replay.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="a progress bar with rate and ETA on stderr (auto: when stderr is a terminal)",
    )

    demo = sub.add_parser("demo", help="embedded broker + SQLite + sample feed, pages on console")
    demo.add_argument("--messages", type=int, default=2000, help="feed size (2000)")
    demo.add_argument("--planted", type=int, default=6, help="planted interaction cases (6)")
    demo.add_argument("--seed", type=int, default=7, help="feed generator seed (7)")
    demo.add_argument("--workdir", type=Path, help="keep the database and pages here")
    demo.add_argument(
        "--timeout", type=float, default=120.0, help="give up after this many seconds (120)"
    )

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="apply migrations up to the newest")
    _config_args(upgrade)
    current = db_sub.add_parser("current", help="print the schema revision")
    _config_args(current)

    check = sub.add_parser("check-config", help="validate settings and catalogs, then exit")
    _config_args(check)
    check.add_argument(
        "--connect",
        action="store_true",
        help="also reach the database, the broker and each channel (no page is sent); "
        "exit 1 when any fails",
    )
    check.add_argument(
        "--timeout", type=float, default=5.0, help="seconds each --connect check may take (5)"
    )

    feed = sub.add_parser("generate-feed", help="write a synthetic HL7 feed with planted cases")
    feed.add_argument("--out", type=Path, required=True, help="the file to write")
    feed.add_argument("--messages", type=int, default=1000, help="how many messages (1000)")
    feed.add_argument("--patients", type=int, default=500, help="distinct patients (500)")
    feed.add_argument("--planted", type=int, default=5, help="planted interaction cases (5)")
    feed.add_argument("--seed", type=int, default=7, help="generator seed: same seed, same feed")
    feed.add_argument("--garbage", type=int, default=0, help="non-HL7 records mixed in (0)")
    feed.add_argument(
        "--ending-now",
        action="store_true",
        help="the feed's 35 days end now and every planted case ends in its last days, so that "
        "`run` (which judges by the wall clock) pages them; by default the feed ends 5 days ago "
        "and its cases lie anywhere in it (for replay, which judges by message time)",
    )
    bench = sub.add_parser("bench", help="throughput and detection latency; prints JSON")
    bench.add_argument("--config", type=Path, help="settings TOML (default: the shipped one)")
    bench.add_argument("--messages", type=int, default=20_000, help="feed size (20000)")
    bench.add_argument("--patients", type=int, default=5_000, help="distinct patients (5000)")
    bench.add_argument("--planted", type=int, default=10, help="planted cases to detect (10)")
    bench.add_argument("--database-url", help="default: sqlite:///labsentinel-bench.db")
    bench.add_argument("--rate", type=int, help="also a paced run at N msg/s for latency")
    bench.add_argument("--bootstrap-servers", help="use this broker instead of starting one")
    bench.add_argument(
        "--broker",
        choices=("tansu", "kafka"),
        default="tansu",
        help="the broker the bench starts: tansu (embedded) or kafka (Apache Kafka, java+mvn)",
    )
    bench.add_argument(
        "--instances", type=int, default=0, help="also run N daemon processes in one group"
    )
    bench.add_argument(
        "--seed-results", type=int, default=0, help="first store N results (PostgreSQL only)"
    )

    for module in COMMAND_MODULES:
        module.register(sub, _config_args)
    return parser


def _version() -> str:
    try:
        return metadata.version("labsentinel")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, dict[str, Any]] = {}
    if getattr(args, "database_url", None):
        overrides["database"] = {"url": args.database_url}
    return load_settings(getattr(args, "config", None), overrides)


def feed_start(ending_now: bool) -> datetime | None:
    """Where a generated feed starts: 35 days before now, or the generator's default."""
    if not ending_now:
        return None
    from service.tools.feedgen.generator import SPAN

    return (datetime.now(UTC) - timedelta(seconds=SPAN)).replace(second=0, microsecond=0)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings: Settings | None = None
    try:
        if args.command not in SETTINGS_FREE:
            settings = _settings(args)
            logs.configure(settings.logging.level, settings.logging.format)
        if settings is not None and args.command in DATABASE_COMMANDS:
            may_create = _command(args) in CREATES_DATABASE
            failures.require_sqlite_database(settings, may_create=may_create)
        status = _dispatch(args, settings)
        sys.stdout.flush()  # a reader gone early shows here, not in the interpreter's exit
        return status
    except ConfigError as exc:
        print(f"labsentinel: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError as exc:
        if failures.stdout_closed():
            # The reader of our output has gone (`alerts list --json | head -1`): exit
            # quietly, as a tool killed by SIGPIPE does, and with 1 rather than 0: not all of
            # the output was delivered, which a `set -o pipefail` script is entitled to learn
            # (a pipeline without it ignores our status anyway). Python's documented recipe.
            failures.discard_stdout()
            return EXIT_FAILURE
        # Otherwise a socket's broken pipe (a channel, the broker): a failure like any other.
        print(f"labsentinel: {failures.sentence(exc, _command(args), settings)}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # the last line of defence: one sentence, no traceback
        print(f"labsentinel: {failures.sentence(exc, _command(args), settings)}", file=sys.stderr)
        return EXIT_FAILURE


def _command(args: argparse.Namespace) -> str:
    """The command as typed, without options: ``run``, ``db upgrade``, ``alerts list``."""
    sub = getattr(args, f"{args.command.replace('-', '_')}_command", None)
    return f"{args.command} {sub}" if isinstance(sub, str) else str(args.command)


def _dispatch(args: argparse.Namespace, settings: Settings | None) -> int:
    # Each command imports what it runs here rather than at module level, to keep start-up
    # light: `--help`, `check-config` and `db current` need neither the web stack, the Kafka
    # clients nor the tools. Nothing below is imported late to dodge an import cycle.
    if args.command == "generate-feed":
        from service.tools.feedgen import generate_feed, write_feed_file

        feed = generate_feed(
            messages=args.messages,
            patients=args.patients,
            planted=args.planted,
            seed=args.seed,
            garbage=args.garbage,
            start=feed_start(args.ending_now),
            recent_cases=args.ending_now,
        )
        write_feed_file(feed, args.out)
        print(
            f"wrote {len(feed.records)} messages ({len(feed.planted)} planted cases) to {args.out}"
        )
        return 0
    if args.command == "demo":
        from service.tools.demo import run_demo

        logs.configure("WARNING", "text")
        return run_demo(
            messages=args.messages,
            planted=args.planted,
            seed=args.seed,
            workdir=args.workdir,
            timeout_s=args.timeout,
        )

    if args.command == "bench":
        from service.tools.bench import main_json, run_bench

        logs.configure("WARNING", "text")
        result = run_bench(
            messages=args.messages,
            patients=args.patients,
            planted=args.planted,
            database_url=args.database_url,
            rate=args.rate,
            bootstrap_servers=args.bootstrap_servers,
            config=str(args.config) if args.config else None,
            instances=args.instances,
            seed_results_count=args.seed_results,
            broker_kind=args.broker,
        )
        print(main_json(result))
        return 0 if result.get("detected") == result.get("planted") else 1

    assert settings is not None, f"{args.command} reads the settings"
    if args.command == "check-config":
        from service.bootstrap import build_clinical, build_delivery, channel_settings
        from service.notify.escalation import paging_for

        require_strong_secrets(settings)
        build_clinical(settings)
        build_delivery(settings, channel_settings(settings, None))
        paging_for(settings)  # validates the routing file, naming the key
        print("configuration ok")
        if args.connect:
            from service.cli.checks import run_checks

            checks = run_checks(settings, timeout_s=args.timeout)
            for check in checks:
                print(check.line())
            return 0 if all(c.ok for c in checks) else EXIT_FAILURE
        return 0
    if args.command == "db":
        from service.bootstrap import open_database
        from service.db.migrate import current_revision

        engine = open_database(settings, migrate=args.db_command == "upgrade")
        try:
            print(f"schema revision: {current_revision(engine)}")
        finally:
            engine.dispose()
        return 0
    if args.command == "replay":
        from service.bootstrap import build_app
        from service.ingest.replay import ProgressBar, make_clock, replay_files

        logging.getLogger().setLevel(max(logging.WARNING, logging.getLogger().level))
        missing = [str(p) for p in args.files if not p.is_file()]
        if missing:
            print(f"labsentinel: no such file: {', '.join(missing)}", file=sys.stderr)
            return EXIT_FAILURE
        show = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
        if args.no_deliver:
            require_rehearsal_database(args, settings)
        app = build_app(
            settings,
            pages_out=args.pages_out,
            clock=make_clock(args.clock),
            held=args.no_deliver,
        )
        try:
            summary = replay_files(
                list(args.files), app, progress=ProgressBar(sys.stderr) if show else None
            )
        finally:
            app.close()
        summary.held = args.no_deliver
        print(summary.line())
        if summary.unrecorded:
            print(
                f"labsentinel: {summary.unrecorded} messages could be neither processed nor "
                "dead-lettered; the logs name their files and positions",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        return 0
    if args.command == "run":
        from service.daemon import run_daemon

        require_strong_secrets(settings)  # before the database and the broker are touched
        asyncio.run(run_daemon(settings, pages_out=args.pages_out))
        return 0
    for module in COMMAND_MODULES:
        if args.command in module.COMMANDS:
            return int(module.handle(args, settings))
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
