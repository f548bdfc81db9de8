"""``scripts/kafka``: Apache Kafka on this machine for a developer, without Docker.

    scripts/kafka resolve                       # fetch the broker jars into the cache (mvn)
    scripts/kafka start [--brokers 3] [--scram USER:PASSWORD] [--env-file FILE]

``start`` runs in the foreground: it prints the bootstrap servers (and writes the daemon's
``LABSENTINEL_KAFKA_*`` variables to ``--env-file``), then stops every node it started on
Ctrl-C or SIGTERM and removes their log directories.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from service.tools.kafka import KAFKA_VERSION, ApacheKafka, Scram, resolve_jars


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/kafka", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("resolve", help=f"resolve Apache Kafka {KAFKA_VERSION}'s jars through Maven")
    start = sub.add_parser("start", help="start 1 or 3 nodes until Ctrl-C or SIGTERM")
    start.add_argument("--brokers", type=int, choices=(1, 3), default=1, help="nodes (1)")
    start.add_argument(
        "--scram", metavar="USER:PASSWORD", help="require SASL/SCRAM-SHA-512 of clients"
    )
    start.add_argument("--env-file", type=Path, help="write the daemon's LABSENTINEL_KAFKA_*")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "resolve":
            print(resolve_jars())
            return 0
        scram = None
        if args.scram:
            user, _, password = args.scram.partition(":")
            if not user or not password:
                print("kafka: --scram takes USER:PASSWORD", file=sys.stderr)
                return 2
            scram = Scram(user, password)
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        with ApacheKafka(args.brokers, scram=scram) as kafka:
            environment = kafka.settings_environment()
            if args.env_file:
                lines = "".join(f"{key}={value}\n" for key, value in environment.items())
                args.env_file.write_text(lines)
                args.env_file.chmod(0o600)
            print(f"Apache Kafka {KAFKA_VERSION}: {kafka.bootstrap_servers}", flush=True)
            stop.wait()
        return 0
    except RuntimeError as exc:
        print(f"kafka: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
