"""Throughput of the MLLP gateway: messages per second acknowledged (AA), 1 and 8 connections.

``python -m service.tools.mllp_bench [--messages N] [--connections 1 8] [--broker kafka]``
starts a broker (the embedded Tansu, or one Apache Kafka node), the gateway in a child process
(so that the clients do not share its event loop), and clients that behave as interface
engines do: send one frame, wait for its ACK, send the next. The messages are the synthetic
feed's (ORU and RDE, about 1 KB each). Prints one line per connection count. Loopback only;
bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from service.ingest.consumer import kafka_options
from service.ingest.topics import ensure_topics
from service.runtime.settings import Settings, load_settings
from service.tools.bench.run import start_broker
from service.tools.broker import free_port
from service.tools.feedgen import generate_feed

VT, FS, CR = b"\x0b", b"\x1c", b"\r"


def _settings(bootstrap: str, run: str) -> Settings:
    return load_settings(
        overrides={
            "kafka": {"bootstrap_servers": bootstrap, "topics": [f"oru-{run}", f"rde-{run}"]},
            "logging": {"format": "text", "level": "WARNING"},
        }
    )


def _serve(bootstrap: str, run: str, port: int) -> None:
    """Child process: the gateway until SIGTERM."""
    from service.ingest.mllp import serve_mllp

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await serve_mllp(_settings(bootstrap, run), "127.0.0.1", port, stop)

    asyncio.run(main())


async def _engine(port: int, messages: list[bytes]) -> list[float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    latencies = []
    try:
        for message in messages:
            started = time.perf_counter()
            writer.write(VT + message + FS + CR)
            await writer.drain()
            ack = await asyncio.wait_for(reader.readuntil(FS + CR), 30)
            if b"MSA|AA|" not in ack:
                raise RuntimeError("a frame was not acknowledged with AA")
            latencies.append(time.perf_counter() - started)
    finally:
        writer.close()
    return latencies


async def _measure(port: int, messages: list[bytes], connections: int) -> str:
    share = [messages[i::connections] for i in range(connections)]
    await _engine(port, messages[:50])  # warm-up: producer started, metadata fetched
    started = time.perf_counter()
    results = await asyncio.gather(*(_engine(port, part) for part in share))
    elapsed = time.perf_counter() - started
    latencies = sorted(x for r in results for x in r)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    return (
        f"{connections} connection(s): {len(latencies)} messages acknowledged in {elapsed:.2f} s"
        f" = {len(latencies) / elapsed:,.0f} msg/s (ACK latency p50 {p50:.2f} ms,"
        f" p99 {p99:.2f} ms)"
    )


def _wait_listening(port: int, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the gateway did not listen")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=4000, help="per connection count")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8])
    parser.add_argument(
        "--broker",
        choices=("tansu", "kafka"),
        default="tansu",
        help="the broker started for the run: tansu (embedded) or kafka (Apache Kafka)",
    )
    parser.add_argument("--serve", nargs=3, metavar=("BOOTSTRAP", "RUN", "PORT"), help="internal")
    args = parser.parse_args(argv)
    if args.serve:
        _serve(args.serve[0], args.serve[1], int(args.serve[2]))
        return 0
    start = (datetime.now(UTC) - timedelta(days=36)).replace(microsecond=0)
    feed = generate_feed(messages=args.messages, patients=500, start=start, duplicates=0)
    messages = [r.value for r in feed.records][: args.messages]
    size = sum(map(len, messages)) / len(messages)
    print(f"{len(messages)} synthetic messages per run, {size:,.0f} bytes on average")
    print(f"broker: {args.broker}")
    broker = start_broker(args.broker)  # the same broker as `labsentinel bench` starts
    try:
        for connections in args.connections:
            run = f"bench{os.getpid()}x{connections}"
            settings = _settings(broker.bootstrap_servers, run)
            asyncio.run(ensure_topics(kafka_options(settings.kafka), settings.kafka.topics))
            port = free_port()
            command = [sys.executable, "-m", "service.tools.mllp_bench", "--serve"]
            child = subprocess.Popen([*command, broker.bootstrap_servers, run, str(port)])
            try:
                _wait_listening(port)
                print(asyncio.run(_measure(port, messages, connections)), flush=True)
            finally:
                child.terminate()
                child.wait(30)
    finally:
        broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
