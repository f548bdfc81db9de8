"""Commands that put HL7 onto the topics: `produce` (files) and `mllp` (the MLLP gateway).

Both route a message by its MSH-9 exactly as the gateway does (``mllp_ack.inspect_frame``):
ORU to the first of ``kafka.topics``, RDE, RAS and ADT to the second, keyed by the patient
identifier the pipeline would choose, and both publish with ``acks=all``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from parsers import split_messages
from service.ingest.consumer import kafka_options
from service.ingest.mllp import identity_config, serve_mllp
from service.ingest.mllp_ack import Accepted, inspect_frame, topic_for
from service.ingest.topics import produce
from service.runtime.settings import ConfigError, Settings

COMMANDS: tuple[str, ...] = ("produce", "mllp")


def register(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    config_args: Callable[..., None],
) -> None:
    produce_cmd = sub.add_parser(
        "produce", help="publish HL7 files to the configured topics (for tests and rehearsal)"
    )
    produce_cmd.add_argument("files", nargs="+", type=Path, help="files of HL7 messages")
    config_args(produce_cmd, database=False)
    produce_cmd.add_argument("--topic-oru", help="results topic (default: kafka.topics[0])")
    produce_cmd.add_argument("--topic-rde", help="orders topic (default: kafka.topics[1])")
    mllp = sub.add_parser(
        "mllp", help="MLLP gateway: accept framed HL7, publish it, answer each frame with an ACK"
    )
    mllp.add_argument("--listen", required=True, metavar="HOST:PORT", help="e.g. 0.0.0.0:2575")
    config_args(mllp, database=False)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "produce":
        return _produce(args, settings)
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--listen {args.listen!r}: expected HOST:PORT")
    asyncio.run(_serve(settings, host.strip("[]"), int(port)))
    return 0


def _produce(args: argparse.Namespace, settings: Settings) -> int:
    topics = settings.kafka.topics
    chosen = (
        args.topic_oru or topic_for(topics, 0),
        args.topic_rde or topic_for(topics, 1),
    )
    config = identity_config(settings)
    records: list[tuple[str, bytes | None, bytes]] = []
    skipped: Counter[str] = Counter()
    for path in args.files:
        for raw in split_messages(path.read_bytes()):
            verdict = inspect_frame(raw, config)
            if isinstance(verdict, Accepted):
                records.append((topic_for(chosen, verdict.topic_index), verdict.key, raw))
            else:
                skipped[verdict.reason] += 1
    sent = asyncio.run(produce(kafka_options(settings.kafka), records))
    counts = Counter(topic for topic, _, _ in records)
    summary = ", ".join(f"{n} to {topic}" for topic, n in sorted(counts.items())) or "nothing"
    print(f"published {sent} message{'' if sent == 1 else 's'}: {summary}")
    for reason, n in sorted(skipped.items()):
        print(f"  skipped {n}: {reason}")
    return 0


async def _serve(settings: Settings, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve_mllp(settings, host, port, stop)
