"""Tansu behind a TCP proxy that can cut every Kafka connection of the daemon.

Kafka clients connect wherever the broker's metadata tells them, so the broker advertises the
proxy's address: every connection, the bootstrap one and the partition leaders', goes through
``TcpProxy``. The proxy counts what it does (connections forwarded, aborted by a cut, refused
during one) so that a scenario can wait for the fault to have touched the daemon instead of
waiting for a fixed time.
"""

from __future__ import annotations

import asyncio
import threading
import time

from service.tools.broker import EmbeddedBroker
from service.tools.kafka import ApacheKafka


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target``; ``cut()`` resets every connection and refuses
    new ones until ``restore()``. Runs its own event loop in a daemon thread.

    Counters (read from any thread): ``connections`` forwarded, ``aborted`` (open connections
    reset by a cut) and ``refused`` (connection attempts refused during a cut)."""

    def __init__(self, target_port: int = 0) -> None:
        self.target_port = target_port
        self.port = 0
        self.cut_active = False
        self.cuts = 0
        self.connections = 0
        self.aborted = 0
        self.refused = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._clients: set[asyncio.StreamWriter] = set()  # the daemon's side of each pair
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> TcpProxy:
        """Start listening on a free port; blocks until it listens (up to 10 s)."""
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self.port = future.result(10)
        return self

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_active:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._clients.add(writer)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}
        self._clients.discard(writer)

    def cut(self) -> None:
        """Reset every open connection and refuse new ones until ``restore()``."""

        def _cut() -> None:
            self.cut_active = True
            self.aborted += sum(1 for w in self._clients if not w.transport.is_closing())
            for writer in list(self._writers):
                writer.transport.abort()

        self._loop.call_soon_threadsafe(_cut)
        self.cuts += 1
        time.sleep(0.05)

    def restore(self) -> None:
        self._loop.call_soon_threadsafe(setattr, self, "cut_active", False)
        time.sleep(0.05)

    def close(self) -> None:
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


class ProxiedBroker:
    """A broker whose advertised address is a ``TcpProxy`` in front of it, so that Kafka
    clients, which connect where metadata tells them, all go through the proxy.

    ``kind``: ``tansu`` (memory storage, the embedded default) or ``kafka`` (one Apache Kafka
    node, ``service.tools.kafka``)."""

    def __init__(self, kind: str = "tansu") -> None:
        if kind not in ("tansu", "kafka"):
            raise ValueError(f"unknown broker kind {kind!r}")
        self.kind = kind
        self.proxy = TcpProxy()
        self.broker: EmbeddedBroker | ApacheKafka | None = None
        self.broker_port = 0

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.proxy.port}"

    def start(self, timeout_s: float = 20.0) -> ProxiedBroker:
        """Start the proxy and the broker; raises RuntimeError if the broker does not start
        within ``timeout_s``. Blocks."""
        self.proxy.start()
        if self.kind == "kafka":
            kafka = ApacheKafka(1, advertised_port=self.proxy.port)
            self.broker = kafka
            self.broker_port = self.proxy.target_port = kafka.nodes[0].port
            start_timeout_s = max(timeout_s, 120.0)  # a JVM, and Maven on first use
        else:
            tansu = EmbeddedBroker(advertised_port=self.proxy.port)
            self.broker = tansu
            self.broker_port = self.proxy.target_port = tansu.port
            start_timeout_s = timeout_s
        try:
            self.broker.start(start_timeout_s)
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        self.proxy.close()
